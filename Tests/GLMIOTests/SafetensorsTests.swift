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

    func testHeaderIsWrittenAsSafetensorsWritesIt() throws {
        // safetensors 0.8.0's save_file of the same tensors (F32 c and z/x"q, BF16 a [2,1] and b [2], metadata
        // format pt) wrote this header: F32 before BF16, names sorted within a dtype, slashes unescaped, space padding.
        let tensors = ["b": Tensor(zeros: [2]), "a": Tensor(zeros: [2, 1]), "c": Tensor(zeros: [1]), "z/x\"q": Tensor(zeros: [3])]
        let path = "\(dir!)/mixed.safetensors"
        try SafetensorsWriter.write(tensors, to: path, dtype: .bfloat16, keepFloat32: { $0 == "c" || $0.hasPrefix("z") })
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let want = #"{"__metadata__":{"format":"pt"},"c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z/x\"q":{"dtype":"F32","shape":[3],"data_offsets":[4,16]},"a":{"dtype":"BF16","shape":[2,1],"data_offsets":[16,20]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[20,24]}}"#
            + String(repeating: " ", count: 6)
        XCTAssertEqual(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }, 264)
        XCTAssertEqual(String(decoding: data.dropFirst(8).prefix(264), as: UTF8.self), want)
        XCTAssertEqual(data.count, 8 + 264 + 24)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(Set(file.names), Set(tensors.keys))
    }

    func testBadFilesGiveOneLineErrorsNamingTheFile() throws {
        let good = "\(dir!)/good.safetensors"
        try SafetensorsWriter.write(["w": Tensor([1, 2, 3, 4], shape: [2, 2])], to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let cases: [(String, Data, String)] = [
            ("truncated", bytes.prefix(bytes.count - 3), "does not match shape"),
            ("tiny", Data([1, 2, 3]), "shorter than"),
            ("header", Data([255, 0, 0, 0, 0, 0, 0, 0]) + Data("{".utf8) + Data(repeating: 65, count: 299), "not valid JSON"),
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
