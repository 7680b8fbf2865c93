// The one error type for problems a user can cause (files, configs, data): a one-line message.

/// An error whose message names the file, line or key and what was expected.
public struct GLMError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
