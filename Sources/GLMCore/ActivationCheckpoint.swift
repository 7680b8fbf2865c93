// Activation recompute (gradient checkpointing): a block of ops runs once without recording, keeping only its input;
// its backward runs the block again with recording and back-propagates through that fresh sub-graph. The recompute
// repeats the same kernels on the same input, so the gradients are the ones the recorded block would give, bit for
// bit. Random draws inside the block (LoRA dropout masks) go through `Autograd.replayable` and are replayed, not
// drawn again.

extension Autograd {
    /// Draw logs of the checkpointed blocks now running forward (innermost last), and of those now recomputing.
    nonisolated(unsafe) static var recordingDraws: [DrawLog] = []
    nonisolated(unsafe) static var replayingDraws: [DrawLog] = []

    /// The random tensors one checkpointed block drew, in order.
    final class DrawLog {
        var draws: [Tensor] = []
        var next = 0
    }

    /// Whether this is a training forward pass: recording, or the unrecorded first run of a checkpointed block
    /// (which must compute what the recorded run would — dropout included).
    public static var isTrainingForward: Bool { isRecording || !recordingDraws.isEmpty }

    /// Runs `body` on `x` keeping only `x` for the backward (and the block's random draws): when the gradient
    /// arrives, `body` runs again with recording and the gradient flows through that recomputation into `x` and
    /// into whatever tensors `body` reads that require gradients (weights, adapters). Without recording (inference,
    /// `noGrad`) it is just `body(x)`. `body` must be a function of `x` and of tensors that stay unchanged until
    /// the backward (parameters), as a decoder layer is.
    public static func checkpoint(_ x: Tensor, _ body: @escaping (Tensor) -> Tensor) -> Tensor {
        guard isRecording else { return body(x) }
        let log = DrawLog()
        recordingDraws.append(log)
        let y = noGrad { body(x) }
        recordingDraws.removeLast()
        // Whether anything in the block needs a gradient is known only by recomputing; record unconditionally.
        y.requiresGrad = true
        y.node = TapeNode(inputs: [x], opaque: true) { g in
            let input = Tensor(shape: x.shape, storage: x.storage)
            if x.requiresGrad { input.requiresGrad = true }
            log.next = 0
            replayingDraws.append(log)
            let again = body(input)
            replayingDraws.removeLast()
            guard again.requiresGrad else { return }
            again.backward(seed: g)
            if x.requiresGrad, let gx = input.grad { x.accumulateGrad(gx, fresh: input.gradIsOwned) }
        }
        return y
    }

    /// A random tensor drawn by `draw`, except while a checkpointed block recomputes: then the tensor that block's
    /// forward drew at the same point is returned again (so dropout masks match and the generator is not advanced).
    public static func replayable(_ draw: () -> Tensor) -> Tensor {
        if let log = replayingDraws.last {
            precondition(log.next < log.draws.count, "a checkpointed block drew more random tensors when recomputed")
            defer { log.next += 1 }
            return log.draws[log.next]
        }
        let t = draw()
        recordingDraws.last?.draws.append(t)
        return t
    }
}
