// Placeholder replaced by the model tests; keeps the target non-empty.
import XCTest
import GLMModel

final class ModelLayerTests: XCTestCase {
    func testNamingScheme() { XCTAssertEqual(GLMModelLayer.namingScheme, "transformers-glm") }
}
