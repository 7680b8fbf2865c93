// Data-parallel gradients over MPI: each process has back-propagated the mean loss of its shard of the step's
// global batch; the synchronizer makes every process hold the gradient of the global batch's mean loss.
//
// Each process weighs what its micro-batches counted (loss tokens for token losses, pairs for DPO), W_r, and its
// gradient is g_r = ∇(Σ_shard losses) / W_r. With W = Σ_r W_r, the global gradient is Σ_r (W_r / W) · g_r: every
// process scales its gradients by W_r / W while packing them into flat buckets, and one in-place MPI_Allreduce
// (sum) per bucket leaves the same result on every process. That equals the single-process gradient of the same
// global batch up to the order of float additions.
import Foundation
import GLMCore

public final class MPIGradientSynchronizer: GradientSynchronizer {
    public let group: MPIProcessGroup
    /// Floats per allreduce bucket (default 16 Mi floats = 64 MiB; a parameter larger than that is one bucket).
    public var bucketFloats: Int
    /// Whether buckets are allreduced while the step's last backward still runs (`training.allreduce_overlap`).
    public var overlapsBackward = false
    private var overlapped: OverlappedAllreduce?
    /// Bytes allreduced by the last `synchronize` (trainable parameters × 4) and the seconds the buckets took.
    public private(set) var lastBytes = 0
    public private(set) var lastSeconds = 0.0
    /// Seconds of the last step's first (tiny) allreduce: mostly waiting for the slowest process to finish backward.
    public private(set) var lastWaitSeconds = 0.0
    private var buffer: [Float] = []

    public init(group: MPIProcessGroup, bucketFloats: Int = 16 << 20) {
        self.group = group; self.bucketFloats = max(1, bucketFloats)
    }

    public var isPrimary: Bool { group.rank == 0 }

    /// With overlap: the total weight first (so each process knows its scale W_r / W), then a communication
    /// thread that reduces buckets as the backward finishes them (`OverlappedAllreduce`).
    public func gradientsWillArrive(_ parameters: [TrainableParameter], weight: Int) throws -> ((Tensor) -> Void)? {
        guard overlapsBackward else { return nil }
        let started = Date()
        let total = try group.reduce([Double(weight)], .sum)[0]
        lastWaitSeconds = Date().timeIntervalSince(started)
        let scale = total > 0 ? Float(Double(weight) / total) : 1 / Float(group.size)
        let job = OverlappedAllreduce(group: group, tensors: parameters.map(\.tensor), bucketFloats: bucketFloats, scale: scale)
        overlapped = job
        job.start()
        return { job.leafReady($0) }
    }

    public func synchronize(_ parameters: [TrainableParameter], weight: Int) throws {
        if let job = overlapped {
            // What is left after the backward: the buckets not yet reduced (`dp/allreduce_s` is the exposed part).
            overlapped = nil
            let started = Date()
            try job.finish()
            lastBytes = job.bytes
            lastSeconds = Date().timeIntervalSince(started)
            return
        }
        let started = Date()
        // One small allreduce: the total weight, and which parameters have a gradient on any process (a parameter
        // without one everywhere keeps none, as in a single process).
        var header = [Double(weight)]
        header += parameters.map { $0.tensor.grad == nil ? 0 : 1 }
        let totals = try group.reduce(header, .sum)
        let waited = Date()
        lastWaitSeconds = waited.timeIntervalSince(started)
        let total = totals[0]
        let scale = total > 0 ? Float(Double(weight) / total) : 1 / Float(group.size)
        var bucket: [Int] = [], filled = 0, bytes = 0
        func flush() throws {
            guard !bucket.isEmpty else { return }
            try reduceBucket(bucket.map { parameters[$0].tensor }, count: filled, scale: scale)
            bytes += filled * 4
            bucket = []; filled = 0
        }
        for (i, p) in parameters.enumerated() where totals[i + 1] > 0 {
            if filled > 0 && filled + p.tensor.count > bucketFloats { try flush() }
            bucket.append(i); filled += p.tensor.count
        }
        try flush()
        lastBytes = bytes
        lastSeconds = Date().timeIntervalSince(waited)
    }

    /// Packs the tensors' gradients (zeros where a process has none) times `scale`, sums them over the processes,
    /// and writes the sums back (giving a gradient to tensors that had none here).
    func reduceBucket(_ tensors: [Tensor], count: Int, scale: Float) throws {
        if buffer.count < count { buffer = [Float](repeating: 0, count: count) }
        try buffer.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            MPIGradientSynchronizer.pack(tensors, scale: scale, into: base)
            try group.sumInPlace(base, count: count)
            MPIGradientSynchronizer.unpack(tensors, from: base)
        }
    }

    /// Writes each tensor's gradient times `scale` (zeros where it has none) one after another into `buffer`.
    static func pack(_ tensors: [Tensor], scale: Float, into buffer: UnsafeMutablePointer<Float>) {
        var offset = 0
        for t in tensors {
            if let g = t.grad { Kernels.scale(g.pointer, scale, buffer + offset, t.count) }
            else { (buffer + offset).update(repeating: 0, count: t.count) }
            offset += t.count
        }
    }

    /// Copies the summed gradients back from `buffer` (laid out as `pack` wrote it), giving a gradient to tensors
    /// that had none; tensors for which `keep` is false are skipped (left as they are).
    static func unpack(_ tensors: [Tensor], from buffer: UnsafePointer<Float>, keep: (Int) -> Bool = { _ in true }) {
        var offset = 0
        for (j, t) in tensors.enumerated() {
            defer { offset += t.count }
            guard keep(j) else { continue }
            if let g = t.grad {
                g.pointer.update(from: buffer + offset, count: t.count)
            } else {
                let g = Tensor(uninitialized: t.shape)
                g.pointer.update(from: buffer + offset, count: t.count)
                t.accumulateGrad(g, fresh: true)
            }
        }
    }

    public func reduce(_ values: [Double], _ op: ReduceOperation) throws -> [Double] { try group.reduce(values, op) }
    public func broadcast(_ data: Data) throws -> Data { try group.broadcast(data) }
}
