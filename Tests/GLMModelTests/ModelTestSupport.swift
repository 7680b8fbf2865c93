// Shared helpers of the model tests: the fixture model directories and scratch directories.
import Foundation
import XCTest
import GLMCore
import GLMIO
import GLMModel
import TestSupport

enum ModelFixtures {
    /// Every fixture directory written by Scripts/make_model_fixtures.py.
    static let names = ["glm", "glm-tied-full-rotary", "glm4", "glm4-tied-full-rotary", "glm-bf16", "glm4-sharded",
                        "glm-v4-config", "chatglm-legacy", "glm-odd-rotary", "glm4-odd-rotary"]

    static func path(_ name: String) -> String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/\(name)" }

    static func expected(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: "\(path(name))/expected.safetensors")
    }

    /// A new empty directory under the system temporary directory.
    static func scratch(_ tag: String) -> String {
        let dir = NSTemporaryDirectory() + "glmtrain-\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Copies a fixture directory (without its expected outputs) to a scratch directory.
    static func copy(_ name: String) throws -> String {
        let dir = scratch(name)
        for f in try FileManager.default.contentsOfDirectory(atPath: path(name)) where f != "expected.safetensors" {
            try FileManager.default.copyItem(atPath: "\(path(name))/\(f)", toPath: "\(dir)/\(f)")
        }
        return dir
    }

    /// Logits `[B, T, V]` without recording.
    static func logits(_ model: GLMForCausalLM, _ ids: [Int32], batch: Int, positions: [Int32]? = nil,
                       mask: AttentionMask? = nil) -> Tensor {
        Autograd.noGrad {
            model.logits(model.hiddenStates(ids: ids, batch: batch, length: ids.count / batch, positions: positions, mask: mask))
        }
    }

    /// A small random configuration for tests that need no reference.
    static func tinyConfig(_ type: GLMModelType = .glm4, tied: Bool = false, bias: Bool = true) -> GLMConfig {
        var c = GLMConfig()
        c.modelType = type
        c.vocabSize = 50; c.hiddenSize = 24; c.intermediateSize = 20; c.numHiddenLayers = 2
        c.numAttentionHeads = 4; c.numKeyValueHeads = 2; c.headDim = 8; c.maxPositionEmbeddings = 64
        c.rmsNormEps = 1e-5; c.tieWordEmbeddings = tied; c.attentionBias = bias
        c.padTokenId = 0; c.eosTokenIds = [1]
        return c
    }

    /// A tiny model whose norms and biases are perturbed away from their trivial initial values.
    static func tinyModel(_ config: GLMConfig, seed: UInt64 = 1) throws -> GLMForCausalLM {
        var gen = SeededGenerator(seed: seed + 100)
        var weights = GLMWeights.randomInit(config, seed: seed)
        for (name, t) in weights {
            let isNorm = name.hasSuffix("norm.weight")
            weights[name] = Tensor.randomNormal(t.shape, mean: isNorm ? 1 : 0, std: isNorm ? 0.5 : 0.2, generator: &gen)
        }
        return try GLMForCausalLM(config: config, weights: weights)
    }
}
