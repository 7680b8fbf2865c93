// One step's allreduce overlapped with its last backward pass (`training.allreduce_overlap`). The trainable
// parameters are split into buckets in a fixed order (reversed parameter order, roughly the order the backward
// finishes them, as PyTorch DDP does) that is the same on every process; a communication thread allreduces the
// buckets strictly in that order, each as soon as the backward has reported every one of its tensors final
// (`Tensor.backward(leafReady:)`), and the rest once the backward has returned. Collectives therefore match across
// processes whatever each one's tape looks like (a MoE expert that got no tokens on one process, a checkpointed
// block whose parameters are only reported at the end).
//
// Each bucket carries, after the gradients (scaled by W_r / W, as `MPIGradientSynchronizer` does), one float per
// tensor: 1 where this process has a gradient. A tensor without one on any process keeps none, as without overlap.
// The communication thread is the only one calling MPI while it runs (MPI_THREAD_SERIALIZED is enough): the main
// thread makes its next MPI call after `finish`.
import Foundation
import GLMCore

final class OverlappedAllreduce {
    private let group: MPIProcessGroup
    private let tensors: [Tensor]
    private let scale: Float
    private var buckets: [[Int]] = []
    private var bucketOf: [Int] = []
    private var waitingIn: [Int] = []
    private var index: [ObjectIdentifier: Int] = [:]
    private var reported: [Bool]
    private var backwardDone = false
    private let condition = NSCondition()
    private let finished = DispatchSemaphore(value: 0)
    private var failure: Error?
    /// Gradient bytes allreduced (tensors with a gradient on some process × 4), when finished.
    private(set) var bytes = 0

    init(group: MPIProcessGroup, tensors: [Tensor], bucketFloats: Int, scale: Float) {
        self.group = group; self.tensors = tensors; self.scale = scale
        reported = [Bool](repeating: false, count: tensors.count)
        bucketOf = [Int](repeating: 0, count: tensors.count)
        var bucket: [Int] = [], filled = 0
        for i in tensors.indices.reversed() {
            if filled > 0 && filled + tensors[i].count > bucketFloats { buckets.append(bucket); bucket = []; filled = 0 }
            bucket.append(i); filled += tensors[i].count
        }
        if !bucket.isEmpty { buckets.append(bucket) }
        for (k, b) in buckets.enumerated() { for i in b { bucketOf[i] = k } }
        waitingIn = buckets.map(\.count)
        for (i, t) in tensors.enumerated() { index[ObjectIdentifier(t)] = i }
    }

    func start() {
        let thread = Thread { [self] in
            defer { finished.signal() }
            let largest = buckets.map { b in b.reduce(b.count) { $0 + tensors[$1].count } }.max() ?? 0
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, largest))
            defer { buffer.deallocate() }
            for k in buckets.indices {
                condition.lock()
                while waitingIn[k] > 0 && !backwardDone { condition.wait() }
                condition.unlock()
                do { try reduce(buckets[k], buffer) } catch { failure = error; return }
            }
        }
        thread.name = "glm-train allreduce"
        thread.start()
    }

    /// The backward's report: `t`'s gradient is final (tensors that are not trainable parameters are ignored).
    func leafReady(_ t: Tensor) {
        guard let i = index[ObjectIdentifier(t)] else { return }
        condition.lock()
        if !reported[i] {
            reported[i] = true
            waitingIn[bucketOf[i]] -= 1
            if waitingIn[bucketOf[i]] == 0 { condition.signal() }
        }
        condition.unlock()
    }

    /// After the backward: the remaining buckets go, and this returns when every bucket is reduced.
    func finish() throws {
        condition.lock()
        backwardDone = true
        condition.signal()
        condition.unlock()
        finished.wait()
        if let failure { throw failure }
    }

    private func reduce(_ bucket: [Int], _ buffer: UnsafeMutablePointer<Float>) throws {
        let ts = bucket.map { tensors[$0] }
        let floats = ts.reduce(0) { $0 + $1.count }
        MPIGradientSynchronizer.pack(ts, scale: scale, into: buffer)
        for (j, t) in ts.enumerated() { buffer[floats + j] = t.grad == nil ? 0 : 1 }
        try group.sumInPlace(buffer, count: floats + ts.count)
        // A tensor no process has a gradient for keeps none.
        let kept = { (j: Int) in buffer[floats + j] > 0 }
        bytes += ts.indices.filter(kept).reduce(0) { $0 + ts[$1].count * 4 }
        MPIGradientSynchronizer.unpack(ts, from: buffer, keep: kept)
    }
}
