// Pointwise functions the preference losses need beyond the basic set: the hinge's rectifier and ORPO's
// log(1 − eˣ), each with its backward.
import Foundation

extension Tensor {
    /// max(x, 0); the gradient at 0 is 0 (as torch.relu).
    public func relu() -> Tensor {
        pointwise({ $0 > 0 ? $0 : 0 }, derivative: { x, _ in x > 0 ? 1 : 0 })
    }

    /// log(1 − eˣ) for x < 0 (a log-probability to the log of its complement), computed stably as TRL's
    /// `log1mexp`: log1p(−eˣ) below −ln 2, log(−expm1(x)) above. d/dx = −eˣ / (1 − eˣ) = −1 / expm1(−x).
    /// x ≥ 0 gives −inf or NaN, as in torch.
    public func log1mexp() -> Tensor {
        pointwise({ x in x < -0.6931471805599453 ? Foundation.log1p(-Foundation.exp(x)) : Foundation.log(-Foundation.expm1(x)) },
                  derivative: { x, _ in -1 / Foundation.expm1(-x) })
    }
}
