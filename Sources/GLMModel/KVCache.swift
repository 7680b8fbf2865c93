// Key/value cache for incremental decoding: per layer, K and V rows (after rotary) of every batch entry, in
// buffers with spare capacity that attention reads in place (AttentionShape.keyRowsPerBatch = capacity).
import GLMCore

/// Per-layer key and value buffers `[batch, capacity, kvHeads·headDim]`; the first `length` rows of each batch
/// entry are filled. A forward pass with a cache appends its T new rows to every layer and then advances
/// `length` by T. Inference only: use it inside `Autograd.noGrad`.
public final class KVCache {
    public let batch: Int
    public let layers: Int
    /// Row width: `kvHeads · headDim`.
    public let width: Int
    /// Rows per batch entry the buffers hold; grows (doubling) when a forward pass needs more.
    public private(set) var capacity: Int
    /// Filled rows per batch entry (the number of positions already processed).
    public internal(set) var length = 0
    public private(set) var keys: [Tensor]
    public private(set) var values: [Tensor]

    /// An empty cache for `layers` layers of rows `width` wide, `batch` sequences and room for `capacity` positions.
    public init(layers: Int, width: Int, batch: Int, capacity: Int = 256) {
        precondition(batch > 0 && capacity > 0, "KV cache needs a positive batch and capacity")
        self.batch = batch
        self.layers = layers
        self.width = width
        self.capacity = capacity
        keys = (0..<layers).map { _ in Tensor(zeros: [batch, capacity, width]) }
        values = (0..<layers).map { _ in Tensor(zeros: [batch, capacity, width]) }
    }

    /// An empty cache for a GLM model of `config`.
    public convenience init(config: GLMConfig, batch: Int, capacity: Int = 256) {
        self.init(layers: config.numHiddenLayers, width: config.keyValueWidth, batch: batch, capacity: capacity)
    }

    /// Counts `rows` more positions as processed (an architecture that writes its own rows, or has none).
    public func advance(by rows: Int) { length += rows }

    /// Makes room for `rows` rows per batch entry, keeping the filled ones.
    public func reserve(_ rows: Int) {
        guard rows > capacity else { return }
        let newCapacity = max(rows, capacity * 2)
        func grown(_ t: Tensor) -> Tensor {
            let out = Tensor(zeros: [batch, newCapacity, width])
            for b in 0..<batch {
                (out.pointer + b * newCapacity * width).update(from: t.pointer + b * capacity * width, count: length * width)
            }
            return out
        }
        keys = keys.map(grown)
        values = values.map(grown)
        capacity = newCapacity
    }

    /// Forgets positions from `newLength` on (e.g. to re-run a suffix); the buffers are kept.
    public func truncate(to newLength: Int) {
        precondition(newLength >= 0 && newLength <= length, "KV cache truncate to \(newLength) of \(length)")
        length = newLength
    }

    /// Writes the new rows `k`, `v` (`[batch, T, width]`) of `layer` at rows `length ..< length+T`.
    func write(layer: Int, k: Tensor, v: Tensor, tokens t: Int) {
        precondition(k.count == batch * t * width && v.count == k.count, "KV cache: rows \(k.shape) do not match \(batch)×\(t)×\(width)")
        precondition(length + t <= capacity, "KV cache: \(length + t) rows exceed capacity \(capacity)")
        let kd = keys[layer].pointer, vd = values[layer].pointer
        for b in 0..<batch {
            let dst = (b * capacity + length) * width, src = b * t * width
            (kd + dst).update(from: k.pointer + src, count: t * width)
            (vd + dst).update(from: v.pointer + src, count: t * width)
        }
    }
}
