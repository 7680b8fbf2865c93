// Neural-network building blocks holding their parameters: Linear, Embedding, RMSNorm.

/// `y = x·Wᵀ + b` with W `[out, in]` (torch.nn.Linear layout).
public struct Linear {
    public var weight: Tensor
    public var bias: Tensor?
    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.rank == 2, "Linear weight must be [out, in], got \(weight.shape)")
        precondition(bias == nil || bias!.shape == [weight.shape[0]], "Linear bias does not match \(weight.shape)")
        self.weight = weight; self.bias = bias
    }
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }
    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.linear(x, weight: weight, bias: bias) }
}

/// Token embedding table `[vocab, hidden]`.
public struct Embedding {
    public var weight: Tensor
    public init(weight: Tensor) { self.weight = weight }
    public func callAsFunction(_ ids: [Int32], shape: [Int]) -> Tensor { Tensor.embedding(weight, ids: ids, idsShape: shape) }
}

/// Root-mean-square normalisation over the last dimension with a learned scale.
public struct RMSNorm {
    public var weight: Tensor
    public var eps: Float
    public init(weight: Tensor, eps: Float) { self.weight = weight; self.eps = eps }
    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.rmsNorm(x, weight: weight, eps: eps) }
}
