// Reverse-mode autodiff: a tape of op nodes recorded during the forward pass, swept back by backward().

/// What an op records for its backward: the inputs it read and a closure that, given the
/// gradient of its output, accumulates gradients into those inputs that require them.
final class TapeNode {
    let inputs: [Tensor]
    let backward: (Tensor) -> Void
    /// Whether the backward reaches tensors that are not among `inputs` (a checkpointed block recomputes a
    /// sub-graph of its own): no leaf's gradient can be called final before such a node has run.
    let opaque: Bool
    init(inputs: [Tensor], opaque: Bool = false, backward: @escaping (Tensor) -> Void) {
        self.inputs = inputs
        self.opaque = opaque
        self.backward = backward
    }
}

/// Global switches of the autodiff engine.
public enum Autograd {
    nonisolated(unsafe) static var noGradDepth = 0

    /// Whether ops currently record onto the tape.
    public static var isRecording: Bool { noGradDepth == 0 }

    /// Runs `body` without recording: outputs never require gradients and no activations are kept.
    /// Used for inference, evaluation and rollouts.
    public static func noGrad<R>(_ body: () throws -> R) rethrows -> R {
        noGradDepth += 1
        defer { noGradDepth -= 1 }
        return try body()
    }
}

extension Tensor {
    /// Whether an op that reads `inputs` should record a node.
    @inlinable static func needsTape(_ inputs: [Tensor]) -> Bool {
        Autograd.isRecording && inputs.contains { $0.requiresGrad }
    }

    /// Attaches a backward closure to an op's output when any input requires gradients.
    /// Returns `self` for chaining. Public so that fused ops outside GLMCore (LoRA's linear) can record themselves.
    @discardableResult
    public func recorded(from inputs: [Tensor], _ backward: @escaping (Tensor) -> Void) -> Tensor {
        if Tensor.needsTape(inputs) {
            requiresGrad = true
            node = TapeNode(inputs: inputs, backward: backward)
        }
        return self
    }

    /// Adds `g` into this tensor's gradient. The first contribution is stored by reference (no
    /// copy); a second one allocates an owned buffer; later ones add in place. Pass `fresh: true`
    /// when `g` is a buffer nobody else holds (made by the op for this input): it is then adopted as
    /// the owned gradient, and no copy is ever needed.
    public func accumulateGrad(_ g: Tensor, fresh: Bool = false) {
        precondition(g.count == count, "gradient of \(g.shape) for tensor of \(shape)")
        guard requiresGrad else { return }
        let g = g.shape == shape ? g : Tensor(shape: shape, storage: g.storage)
        guard let existing = grad else {
            grad = g
            gradIsOwned = fresh
            return
        }
        if gradIsOwned {
            Kernels.addInPlace(existing.pointer, g.pointer, count)
        } else {
            let sum = Tensor(uninitialized: shape)
            Kernels.add(existing.pointer, g.pointer, sum.pointer, count)
            grad = sum
            gradIsOwned = true
        }
    }

    /// Back-propagates from this scalar (or, with `seed`, from any tensor given its output
    /// gradient). Leaf gradients accumulate; the tape and the activations it saved are released.
    /// `leafReady`, if given, is called with each leaf of the tape as soon as no node still to run can add to its
    /// gradient (which is then owned and final for this backward), so that work on it — an allreduce — can
    /// overlap the rest of the sweep. Leaves that only a checkpointed block's recomputation reaches are not
    /// reported (the caller treats what it was not told about as final when `backward` returns).
    public func backward(seed: Tensor? = nil, leafReady: ((Tensor) -> Void)? = nil) {
        precondition(requiresGrad, "backward() on a tensor that does not require gradients")
        if seed == nil { precondition(count == 1, "backward() without a seed needs a scalar, got \(shape)") }
        let order = topologicalOrder()
        let leaves = order.filter { $0.node == nil }
        let readyAfter = leafReady == nil ? [:] : Tensor.leavesFinished(sweep: order.reversed())
        accumulateGrad(seed ?? Tensor(repeating: 1, shape: shape))
        for (position, t) in order.reversed().enumerated() {
            guard let node = t.node else { continue }
            if let g = t.grad { node.backward(g) }
            // Interior tensors give up their gradient and their node (and so the saved activations).
            t.node = nil
            t.grad = nil
            t.gradIsOwned = false
            if let leafReady, let finished = readyAfter[position] {
                for leaf in finished { leaf.ownGradient(); leafReady(leaf) }
            }
        }
        // Leaves keep an owned gradient, so that later in-place updates never alias another buffer.
        for t in leaves { t.ownGradient() }
    }

    /// Replaces a gradient held by reference (another tensor's buffer) with an owned copy.
    func ownGradient() {
        if let g = grad, !gradIsOwned { grad = g.copy(); gradIsOwned = true }
    }

    /// For a backward sweep (outputs first): at which positions each leaf's gradient becomes final — after the
    /// last node in the sweep that reads it, and not before the last opaque node (whose backward may reach leaves
    /// it does not list). Keys are sweep positions.
    static func leavesFinished<S: Sequence>(sweep: S) -> [Int: [Tensor]] where S.Element == Tensor {
        var last: [ObjectIdentifier: (Tensor, Int)] = [:]
        var lastOpaque = -1
        for (position, t) in sweep.enumerated() {
            guard let node = t.node else { continue }
            if node.opaque { lastOpaque = position }
            for input in node.inputs where input.requiresGrad && input.node == nil {
                last[ObjectIdentifier(input)] = (input, position)
            }
        }
        var finished: [Int: [Tensor]] = [:]
        for (leaf, position) in last.values { finished[max(position, lastOpaque), default: []].append(leaf) }
        return finished
    }

    /// All tensors reachable from this one through tape nodes, inputs before outputs.
    func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            let id = ObjectIdentifier(t)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((t, true))
            if let node = t.node {
                for input in node.inputs where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        return order
    }
}
