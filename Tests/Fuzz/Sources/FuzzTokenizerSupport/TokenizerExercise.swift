// What the tokenizer targets do with a tokenizer that loaded: encode and decode a few texts, look tokens up by
// id (in and out of range) and added tokens by content.
import FuzzSupport
import GLMIO

public enum TokenizerExercise {
    public static func run(_ tok: GLMTokenizer) {
        for text in Fuzz.sampleTexts {
            let ids = tok.encode(text, addSpecialTokens: true)
            _ = tok.decode(ids)
            _ = tok.decode(ids, skipSpecialTokens: true)
            for id in ids.prefix(16) { _ = tok.token(id); _ = tok.isSpecial(id) }
        }
        let probe: [Int32] = [-1, 0, 1, Int32(truncatingIfNeeded: tok.vocabularySize - 1), Int32(truncatingIfNeeded: tok.vocabularySize), .max, .min]
        _ = tok.decode(probe)
        for t in tok.addedTokens.prefix(16) { _ = tok.tokenID(t.content) }
    }
}
