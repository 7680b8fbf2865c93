// The special token ids the blank-infilling objective writes, filled by the caller (usually from the tokenizer).
import GLMCore
import GLMIO

/// Token ids of GLM's blank infilling: the three mask tokens, `<sop>`/`<eop>`, padding, an optional leading
/// token, the end-of-text token, and the ids that end a sentence (for the sentence-level variant).
public struct BlankInfillingTokens: Sendable, Equatable {
    /// `[MASK]`: one per span in Part A (token level).
    public var mask: Int32
    /// `[sMASK]`: the mask of the sentence-level variant (GLM's `--task-mask`).
    public var sentenceMask: Int32
    /// `[gMASK]`: the mask of the document-level variant.
    public var generationMask: Int32
    /// `<sop>`: fed before each span in Part B.
    public var startOfPiece: Int32
    /// `<eop>`: the target after each span's last token.
    public var endOfPiece: Int32
    /// Written after each row up to `seqLen` (never a target).
    public var pad: Int32
    /// A token put in front of every text and never masked, as GLM's `[CLS]` (ENC). GLM-4 tokenizers have none: nil.
    public var cls: Int32?
    /// End of text: a trailing `eos` is never masked (GLM keeps it out of Part B), and it ends a sentence.
    public var eos: Int32?
    /// Ids whose text contains one of `. ? ! ; : 。 ？ ！ ； …` or a newline (GLM's `contains_sentence_end`).
    public var sentenceEnds: Set<Int32>

    public init(mask: Int32, sentenceMask: Int32, generationMask: Int32, startOfPiece: Int32, endOfPiece: Int32,
                pad: Int32, cls: Int32? = nil, eos: Int32? = nil, sentenceEnds: Set<Int32> = []) {
        self.mask = mask; self.sentenceMask = sentenceMask; self.generationMask = generationMask
        self.startOfPiece = startOfPiece; self.endOfPiece = endOfPiece; self.pad = pad
        self.cls = cls; self.eos = eos; self.sentenceEnds = sentenceEnds
    }

    /// The characters that make a token end a sentence (`blocklm_utils.py::contains_sentence_end`).
    public static let sentenceEndCharacters: [Character] = [".", "?", "!", ";", ":", "。", "？", "！", "；", "…", "\n"]

    /// Looks the tokens up by their text in `tokenizer` (`[MASK]`, `[sMASK]`, `[gMASK]`, `<sop>`, `<eop>` and the
    /// given pad, eos and cls spellings; GLM-4 uses `<|endoftext|>` for both pad and eos), and finds the sentence
    /// ends by decoding every id. Throws naming the first token the tokenizer lacks.
    public init(tokenizer: GLMTokenizer, pad: String = "<|endoftext|>", eos: String? = "<|endoftext|>",
                cls: String? = nil) throws {
        func id(_ s: String) throws -> Int32 {
            guard let i = tokenizer.tokenID(s) else {
                throw GLMError("\(tokenizer.source): blank infilling needs the token \(s), which this tokenizer lacks")
            }
            return i
        }
        let endScalars = Set(BlankInfillingTokens.sentenceEndCharacters.flatMap { $0.unicodeScalars })
        var ends = Set<Int32>()
        for i in 0..<tokenizer.vocabularySize
        where tokenizer.decode([Int32(i)]).unicodeScalars.contains(where: { endScalars.contains($0) }) {
            ends.insert(Int32(i))
        }
        self.init(mask: try id("[MASK]"), sentenceMask: try id("[sMASK]"), generationMask: try id("[gMASK]"),
                  startOfPiece: try id("<sop>"), endOfPiece: try id("<eop>"), pad: try id(pad),
                  cls: try cls.map(id), eos: try eos.map(id), sentenceEnds: ends)
    }
}
