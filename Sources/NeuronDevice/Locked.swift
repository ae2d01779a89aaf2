#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value that threads share, read and changed only under its lock.
///
/// The standard library's `Synchronization.Mutex` does the same, but on
/// Linux it locks with futexes that ThreadSanitizer does not see, so every
/// access it guards is reported as a race (Swift 6.3.1) and a real race
/// beside them would be lost in the noise. This lock is a pthread mutex,
/// which ThreadSanitizer follows, and as cheap when nobody else holds it.
package final class Locked<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Run `body` with the value, holding the lock; nothing else may lock
    /// this one inside it.
    package func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// A lock that guards no value, only a section: run `body` holding it.
    /// (No access to the empty value is made: ThreadSanitizer took one
    /// such access, at the object's end, for a race.)
    package func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R where Value == Void {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
