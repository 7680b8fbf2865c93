// Reading a model's config.json from disk: the file side of GLMConfig (GLMModel parses bytes and never reads files).
import Foundation
import GLMCore
import GLMModel

extension GLMConfig {
    /// Reads a config file (`path` is named in errors).
    public static func load(path: String) throws -> GLMConfig {
        let data = try FileInput.read(path, hint: "a model directory needs config.json", limit: FileLimits.maxConfigBytes)
        return try decode(data, source: path)
    }
}
