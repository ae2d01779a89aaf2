# Sourced by gen-onnx-proto and gen-profile-proto: protoc_swift DIR FILE.proto
# runs protoc (apt install protobuf-compiler) with swift-protobuf's
# protoc-gen-swift, of the version Package.swift names, built here once (a
# few minutes), and writes FILE.pb.swift into DIR (internal visibility).
protoc_swift() {
	local out=$1 proto=$2
	local version work
	version=$(sed -n 's/.*swift-protobuf", from: "\([0-9.]*\)".*/\1/p' "$REPO/Package.swift")
	command -v protoc >/dev/null || { echo "needs protoc (apt install protobuf-compiler)" >&2; return 1; }
	work=${NEURON_PGEN_DIR:-${TMPDIR:-/tmp}/neuron-protoc-gen-swift}
	mkdir -p "$work"
	cat > "$work/Package.swift" <<PKG
// swift-tools-version:5.9
import PackageDescription
let package = Package(name: "pgen", dependencies: [.package(url: "https://github.com/apple/swift-protobuf", exact: "$version")], targets: [])
PKG
	(cd "$work" && swift build -c release --product protoc-gen-swift) >&2
	protoc --plugin=protoc-gen-swift="$work/.build/release/protoc-gen-swift" \
		--swift_opt=Visibility=Internal --swift_out="$out" -I "$(dirname "$proto")" "$proto"
	PROTOBUF_SWIFT_VERSION=$version
}
