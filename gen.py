import onnx, numpy as np, sys
from onnx import helper, TensorProto, numpy_helper
def make(name, C, H, s, relu6=True):
    rng=np.random.default_rng(0)
    W=numpy_helper.from_array(rng.standard_normal((C,1,3,3)).astype(np.float32),'w')
    B=numpy_helper.from_array(rng.standard_normal((C,)).astype(np.float32),'b')
    nodes=[helper.make_node('Conv',['x','w','b'],['y' if not relu6 else 'c'],group=C,kernel_shape=[3,3],pads=[1,1,1,1],strides=[s,s])]
    if relu6:
        lo=numpy_helper.from_array(np.array(0,np.float32),'lo'); hi=numpy_helper.from_array(np.array(6,np.float32),'hi')
        nodes.append(helper.make_node('Clip',['c','lo','hi'],['y']))
        inits=[W,B,lo,hi]
    else: inits=[W,B]
    Ho=(H+2-3)//s+1
    g=helper.make_graph(nodes,name,[helper.make_tensor_value_info('x',TensorProto.FLOAT,[1,C,H,H])],[helper.make_tensor_value_info('y',TensorProto.FLOAT,[1,C,Ho,Ho])],inits)
    m=helper.make_model(g,opset_imports=[helper.make_opsetid('',13)]); m.ir_version=8
    onnx.save(m,name+'.onnx'); np.save(name+'-input0.npy',rng.standard_normal((1,C,H,H)).astype(np.float32))
make('dw48s1',16,48,1); make('dw24s1',48,24,1); make('dw48s2',48,48,2); make('dw12s1',144,12,1); make('dw96s1',16,96,1)
