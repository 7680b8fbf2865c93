// Loads the committed reference fixtures (safetensors written by the scripts in Scripts/).
import Foundation
import GLMCore
import GLMIO

public enum Fixtures {
    /// The repository root, found from this source file's location.
    public static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// Opens `Tests/<target>/Fixtures/<name>`.
    public static func safetensors(_ target: String, _ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: "\(repositoryRoot)/Tests/\(target)/Fixtures/\(name)")
    }

    /// Largest |a − b| divided by max(1e−6, largest |b|): the error relative to the reference's scale.
    public static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count, "compared tensors differ in size: \(a.shape) vs \(b.shape)")
        var maxDiff = 0.0, maxRef = 0.0
        for i in 0..<a.count {
            maxDiff = max(maxDiff, Double(abs(a.pointer[i] - b.pointer[i])))
            maxRef = max(maxRef, Double(abs(b.pointer[i])))
        }
        return maxDiff / max(maxRef, 1e-6)
    }
}

extension SafetensorsFile {
    /// A fixture tensor of small integers (stored as floats) as Int32 ids.
    public func ids(_ name: String) throws -> [Int32] { try tensor(name).scalars.map { Int32($0) } }
}
