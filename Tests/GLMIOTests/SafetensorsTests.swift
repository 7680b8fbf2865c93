// Safetensors: round trips in f32/bf16/f16, the reference library's own file, and one-line errors on bad files.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class SafetensorsTests: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "glmtrain-st-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testRoundTripInEveryDType() throws {
        var gen = SeededGenerator(seed: 5)
        let tensors = ["a.weight": Tensor.randomNormal([3, 4], generator: &gen), "b": Tensor([1.5, -2], shape: [2]),
                       "scalar": Tensor(scalar: 7)]
        for dtype in StorageDType.allCases {
            let path = "\(dir!)/t-\(dtype.rawValue).safetensors"
            try SafetensorsWriter.write(tensors, to: path, dtype: dtype)
            let file = try SafetensorsFile(path: path)
            XCTAssertEqual(file.names, ["a.weight", "b", "scalar"])
            XCTAssertEqual(file.metadata["format"], "pt")
            XCTAssertEqual(file.entries["a.weight"]!.dtype, dtype)
            XCTAssertEqual(file.entries["a.weight"]!.shape, [3, 4])
            let tolerance: Double = dtype == .float32 ? 0 : (dtype == .bfloat16 ? 4e-3 : 5e-4)
            for (name, t) in tensors {
                XCTAssertLessThanOrEqual(Fixtures.relativeError(try file.tensor(name), t), tolerance, "\(name) \(dtype)")
            }
            XCTAssertEqual(try file.tensor("b").scalars, [1.5, -2])
        }
    }

    func testReadsTheFileWrittenByPythonSafetensors() throws {
        // Written by safetensors.torch.save_file in Scripts/make_core_fixtures.py.
        let file = try Fixtures.safetensors("GLMCoreTests", "blocks.safetensors")
        XCTAssertEqual(file.entries["attn.param.wq"]?.shape, [32, 32])
        XCTAssertEqual(file.entries["ce.targets"]?.shape, [10])
        XCTAssertEqual(try file.ids("ce.targets").prefix(3), [3, -100, 16])
    }

    func testBadFilesGiveOneLineErrorsNamingTheFile() throws {
        let good = "\(dir!)/good.safetensors"
        try SafetensorsWriter.write(["w": Tensor([1, 2, 3, 4], shape: [2, 2])], to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let cases: [(String, Data, String)] = [
            ("truncated", bytes.prefix(bytes.count - 3), "does not match shape"),
            ("tiny", Data([1, 2, 3]), "shorter than"),
            ("header", Data([255, 0, 0, 0, 0, 0, 0, 0]) + Data(repeating: 65, count: 300), "not valid JSON"),
            ("length", Data([0, 0, 0, 0, 0, 0, 0, 1]) + Data(repeating: 65, count: 30), "header length"),
        ]
        for (name, data, expected) in cases {
            let path = "\(dir!)/\(name).safetensors"
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(path) && message.contains(expected), message)
                XCTAssertFalse(message.contains("\n"))
            }
        }
        XCTAssertThrowsError(try SafetensorsFile(path: good).tensor("missing")) { error in
            XCTAssertTrue("\(error)".contains("no tensor named 'missing'"))
        }
        XCTAssertThrowsError(try SafetensorsFile(path: "\(dir!)/absent.safetensors"))
    }

    func testWriteLeavesNoTemporaryFiles() throws {
        try SafetensorsWriter.write(["x": Tensor(scalar: 1)], to: "\(dir!)/x.safetensors")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["x.safetensors"])
    }
}
