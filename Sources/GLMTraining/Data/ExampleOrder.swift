// The order in which examples are visited, epoch after epoch, as a cursor that a checkpoint can store.
import GLMCore

/// Visits `count` examples epoch by epoch, each epoch in a permutation drawn from (seed, epoch) when shuffling.
/// The whole state is (epoch, position), so a resumed run visits exactly the same examples.
public struct ExampleOrder: Sendable {
    public let count: Int
    public let shuffle: Bool
    public let seed: UInt64
    public private(set) var epoch = 0
    public private(set) var position = 0
    private var permutation: [Int]

    public init(count: Int, shuffle: Bool, seed: UInt64) {
        precondition(count > 0, "ExampleOrder over no examples")
        self.count = count; self.shuffle = shuffle; self.seed = seed
        permutation = ExampleOrder.permutation(count: count, shuffle: shuffle, seed: seed, epoch: 0)
    }

    static func permutation(count: Int, shuffle: Bool, seed: UInt64, epoch: Int) -> [Int] {
        var p = Array(0..<count)
        if shuffle {
            var g = SeededGenerator(seed: ExampleOrder.mix(seed, UInt64(epoch), 0x5348_5546))
            p.shuffle(using: &g)
        }
        return p
    }

    /// A 64-bit hash of several words (splitmix64 steps), for per-epoch and per-example seeds.
    public static func mix(_ words: UInt64...) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        for w in words {
            h ^= w &+ 0x9E37_79B9_7F4A_7C15 &+ (h << 6) &+ (h >> 2)
            h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
            h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
            h ^= h >> 31
        }
        return h
    }

    /// The next example index without advancing.
    public func peek() -> (index: Int, epoch: Int) { (permutation[position], epoch) }

    /// The next example index, advancing (and starting a new epoch at the end).
    public mutating func next() -> (index: Int, epoch: Int) {
        let out = peek()
        advance()
        return out
    }

    public mutating func advance() {
        position += 1
        if position == count {
            position = 0; epoch += 1
            permutation = ExampleOrder.permutation(count: count, shuffle: shuffle, seed: seed, epoch: epoch)
        }
    }

    public var cursor: [String: Int] { ["epoch": epoch, "position": position] }

    public mutating func restore(_ cursor: [String: Int]) throws {
        guard let e = cursor["epoch"], let p = cursor["position"], e >= 0, p >= 0, p < count else {
            throw GLMError("data cursor \(cursor) does not fit a dataset of \(count) examples")
        }
        epoch = e; position = p
        permutation = ExampleOrder.permutation(count: count, shuffle: shuffle, seed: seed, epoch: e)
    }
}
