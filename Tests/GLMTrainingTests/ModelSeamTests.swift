// The model seam: a model declares its adaptable linears (matching its parameters) and GGUF architecture; LoRA
// targets are checked against the declaration; Muon refuses a parameter it has no rule for instead of routing it.
import XCTest
import Foundation
import GLMCore
import GLMModel
import GLMTraining

final class ModelSeamTests: XCTestCase {
    func model(_ type: GLMModelType) throws -> GLMForCausalLM {
        var c = GLMConfig()
        c.modelType = type
        (c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers) = (40, 16, 24, 2)
        (c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.padTokenId, c.eosTokenIds) = (2, 1, 8, 0, [1])
        return try GLMForCausalLM(config: c, seed: 3)
    }

    func testDeclaredLinearsAreTheModelsWeights() throws {
        for type in GLMModelType.allCases {
            let m: CausalLanguageModel = try model(type)
            XCTAssertEqual(m.modelTypeName, type.rawValue)
            XCTAssertEqual(m.ggufArchitecture, type == .glm4 ? "glm4" : "chatglm")
            XCTAssertEqual(m.adaptableTargets, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"])
            XCTAssertEqual(m.adaptableLinears.count, 12)
            for l in m.adaptableLinears {
                XCTAssertEqual(m.parameters[l.module + ".weight"]?.shape, l.shape, l.module)
                XCTAssertTrue(l.module.hasPrefix("model.layers.\(l.layer)."))
            }
        }
    }

    func testMuonRefusesAThreeDimensionalParameter() throws {
        let recipeText = """
        task: pretrain
        model: {path: x}
        data: {train: x.jsonl}
        optimizer: {name: muon}
        """
        let recipe = try Recipe(node: try RecipeReader.document(recipeText, file: "r.yaml"), file: "r.yaml")
        var params = [TrainableParameter(name: "model.layers.0.mlp.experts.gate_up_proj", tensor: Tensor(zeros: [4, 6, 3]), weightDecay: 0)]
        XCTAssertThrowsError(try OptimizerFactory.make(recipe.optimizer, parameters: &params)) { e in
            XCTAssertTrue((e as? GLMError)?.message.contains("'model.layers.0.mlp.experts.gate_up_proj' has shape [4, 6, 3]") ?? false, "\(e)")
        }
        var matrices = [TrainableParameter(name: "model.layers.0.mlp.down_proj.weight", tensor: Tensor(zeros: [6, 3]), weightDecay: 0)]
        XCTAssertNoThrow(try OptimizerFactory.make(recipe.optimizer, parameters: &matrices))
    }
}
