// The chat-data functions of the training layer's datasets, kept under their old names: they live in GLMIO
// (`ChatData`), where the commands that do not train use them too.
import GLMIO

extension TokenizedDataset {
    public static func chatLines(_ path: String) throws -> [ChatDataLine] { try ChatData.chatLines(path) }

    public static func conversation(_ line: ChatDataLine, requireCompletion: Bool = true) throws -> ChatConversation {
        try ChatData.conversation(line, requireCompletion: requireCompletion)
    }

    public static func checkConversation(_ c: ChatConversation, line: ChatDataLine, template: ChatTemplate) throws {
        try ChatData.checkConversation(c, line: line, template: template)
    }

    public static func rejectForeignToolCalls(_ line: ChatDataLine, template: ChatTemplate? = nil) throws {
        try ChatData.rejectForeignToolCalls(line, template: template)
    }
}
