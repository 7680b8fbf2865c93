// The last rotary cos/sin tables made, handed out again while the arguments stay the same: a forward pass asks
// every layer's queries and keys (and the backward asks again) for the tables of one batch's positions.
import Foundation

final class RotaryTableCache: @unchecked Sendable {
    static let shared = RotaryTableCache()

    private struct Entry {
        var config: RotaryConfig
        var positions: [Int32]
        var blockPositions: [Int32]?
        var cos: [Float]
        var sin: [Float]
    }

    private let lock = NSLock()
    private var last: Entry?

    /// The tables for these arguments: the kept ones when they match exactly, else `make()`'s (then kept).
    func tables(config: RotaryConfig, positions: [Int32], blockPositions: [Int32]?,
                make: () -> (cos: [Float], sin: [Float])) -> (cos: [Float], sin: [Float]) {
        lock.lock()
        if let e = last, e.config == config, e.positions == positions, e.blockPositions == blockPositions {
            lock.unlock()
            return (e.cos, e.sin)
        }
        lock.unlock()
        let made = make()
        lock.lock()
        last = Entry(config: config, positions: positions, blockPositions: blockPositions, cos: made.cos, sin: made.sin)
        lock.unlock()
        return made
    }
}
