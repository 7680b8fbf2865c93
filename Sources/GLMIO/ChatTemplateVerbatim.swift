// Which Jinja chat templates GLMTrain renders exactly: the texts of Tests/GLMIOTests/Fixtures/chat_templates, which
// transformers' apply_chat_template was compared against. `ChatTemplate.identify` recognises a template by its
// distinctive parts, so an edited copy (another generation prompt, a changed system text) would otherwise be
// rendered silently as the stock template: such a one gets a warning that its edits are not applied.
import Foundation

extension ChatTemplate {
    /// FNV-1a 64 of each verified template's text (trailing whitespace removed) and the fixture it is.
    static let verbatim: [UInt64: String] = [
        0x2D6A_DD0F_03D2_E712: "glm-4-0414",
        0x5211_A529_2E2C_BD4A: "glm-4-9b-chat-1m-hf",
        0x8AB3_8A1E_7435_879B: "glm-4-9b-chat",
        0x42AC_D273_7153_00D2: "glm-4.5",
        0x3E65_CC39_39F0_C8D8: "glm-edge-4b-chat",
        0x86C1_1AFB_D1EE_89AC: "glm-z1-0414",
    ]

    /// Whether `jinja` is, up to trailing whitespace, one of the templates GLMTrain was checked against.
    public static func isVerbatim(jinja: String) -> Bool {
        var end = jinja.unicodeScalars.endIndex
        while end > jinja.unicodeScalars.startIndex {
            let before = jinja.unicodeScalars.index(before: end)
            guard CharacterSet.whitespacesAndNewlines.contains(jinja.unicodeScalars[before]) else { break }
            end = before
        }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in String(jinja.unicodeScalars[..<end]).utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return verbatim[h] != nil
    }
}
