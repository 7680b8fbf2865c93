// The safetensors format: an 8-byte header length, a JSON header, raw little-endian tensor data.
// Reading memory-maps the file; writing goes to a temporary name, is flushed, then renamed.
import Foundation
import GLMCore

/// One tensor entry of a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public var dtype: StorageDType
    public var shape: [Int]
    /// Byte range within the data section.
    public var begin: Int, end: Int
}

/// A memory-mapped safetensors file.
public final class SafetensorsFile {
    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    let data: Data      // mapped
    let dataStart: Int

    /// Opens and validates `path`; errors name the file and what is wrong.
    public init(path: String) throws {
        self.path = path
        let data: Data
        data = try FileInput.mapped(path, kind: "safetensors")
        guard data.count >= 8 else { throw GLMError("\(path): not a safetensors file (shorter than its 8-byte header length)") }
        let rawLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard rawLength > 0, rawLength <= UInt64(FileLimits.maxHeaderBytes), Int(rawLength) <= data.count - 8 else {
            throw GLMError("\(path): header length \(rawLength) does not fit a file of \(data.count) bytes (at most \(FileLimits.maxHeaderBytes))")
        }
        let headerLength = Int(rawLength)
        // The reference reader: the header starts with '{' (no byte-order mark or space before it)
        guard data[data.startIndex + 8] == UInt8(ascii: "{") else { throw GLMError("\(path): header does not start with '{'") }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) }
        catch { throw GLMError("\(path): header is not valid JSON") }
        guard let header = json as? [String: Any] else { throw GLMError("\(path): header is not a JSON object") }
        var entries: [String: SafetensorsEntry] = [:]
        var metadata: [String: String] = [:]
        let dataSize = data.count - 8 - headerLength
        for (name, value) in header {
            if name == "__metadata__" {
                guard let pairs = value as? [String: Any] else { throw GLMError("\(path): __metadata__ is not a JSON object") }
                for (k, v) in pairs {
                    guard let text = v as? String else { throw GLMError("\(path): __metadata__ key '\(k)' is not a string") }
                    metadata[k] = text
                }
                continue
            }
            // integers as written: Foundation's JSON bridges 2048.0 and true to Int, which the reference refuses
            // (objCType is "d" for a decimal, "c" for a boolean; "Q" is an unsigned value beyond Int64)
            func integers(_ v: Any?) -> [Int]? {
                guard let a = v as? [NSNumber] else { return nil }
                var out: [Int] = []
                for n in a {
                    switch String(cString: n.objCType) {
                    case "q", "i", "l", "s": out.append(Int(n.int64Value))
                    case "Q": guard n.uint64Value <= UInt64(Int.max) else { return nil }; out.append(Int(n.uint64Value))
                    default: return nil
                    }
                }
                return out
            }
            guard let obj = value as? [String: Any], let dt = obj["dtype"] as? String,
                  let shape = integers(obj["shape"]), let offsets = integers(obj["data_offsets"]), offsets.count == 2 else {
                throw GLMError("\(path): tensor '\(name)' has no valid dtype/shape/data_offsets (integers)")
            }
            guard let dtype = StorageDType(rawValue: dt) else {
                throw GLMError("\(path): tensor '\(name)' has dtype \(dt); expected F32, F16 or BF16")
            }
            let count = try Checked.elementCount(shape, "\(path): tensor '\(name)'")
            let bytes = try Checked.multiply(count, dtype.byteCount, "\(path): tensor '\(name)' byte size")
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] - offsets[0] == bytes, offsets[1] <= dataSize else {
                throw GLMError("\(path): tensor '\(name)' data \(offsets) does not match shape \(shape) \(dt) within \(dataSize) data bytes (truncated file?)")
            }
            entries[name] = SafetensorsEntry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        // As the reference reader requires: the tensors tile the data section exactly, in offset order, with no
        // overlap, gap or trailing bytes.
        var expected = 0, previous: String?
        for (name, e) in entries.sorted(by: { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }) {
            guard e.begin == expected else {
                try SafetensorsFile.refuseDuplicateName(data.subdata(in: 8..<(8 + headerLength)), path: path)
                let after = previous.map { " after '\($0)', which ends at \(expected)" } ?? ""
                throw GLMError("\(path): tensor '\(name)' starts at data byte \(e.begin)\(after); expected \(expected) (\(e.begin < expected ? "tensors overlap" : "a gap between tensors"))")
            }
            expected = e.end; previous = name
        }
        guard expected == dataSize else {
            try SafetensorsFile.refuseDuplicateName(data.subdata(in: 8..<(8 + headerLength)), path: path)
            throw GLMError("\(path): tensors cover \(expected) of \(dataSize) data bytes; expected the whole data section (trailing bytes or a truncated header)")
        }
        self.entries = entries
        self.metadata = metadata
        self.data = data
        self.dataStart = 8 + headerLength
    }

    public var names: [String] { entries.keys.sorted() }

    /// The tensor `name` converted to f32; with `keepBF16`, a bf16 matrix (rank 2) stays bf16 in memory instead
    /// (2 bytes per element, for weights that do not train; see `TensorStorage`).
    public func tensor(_ name: String, keepBF16: Bool = false) throws -> Tensor {
        guard let e = entries[name] else { throw GLMError("\(path): no tensor named '\(name)'") }
        if keepBF16 && e.dtype == .bfloat16 && e.shape.count == 2 {
            let out = Tensor(shape: e.shape, storage: TensorStorage(bf16Count: (e.end - e.begin) / 2))
            data.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(out.bf16Bits!).copyMemory(from: raw.baseAddress! + dataStart + e.begin,
                                                                  byteCount: out.count * 2)
            }
            return out
        }
        let out = Tensor(uninitialized: e.shape)
        let n = out.count
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + e.begin
            switch e.dtype {
            case .float32:
                UnsafeMutableRawPointer(out.pointer).copyMemory(from: src, byteCount: n * 4)
            case .bfloat16:
                if Int(bitPattern: src) % 2 == 0 {
                    DTypeConversion.bf16ToFloat(src.assumingMemoryBound(to: UInt16.self), out.pointer, n)
                } else {
                    for i in 0..<n { out.pointer[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
                }
            case .float16:
                if Int(bitPattern: src) % 2 == 0 {
                    DTypeConversion.f16ToFloat(src.assumingMemoryBound(to: UInt16.self), out.pointer, n)
                } else {
                    for i in 0..<n { out.pointer[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                }
            }
        }
        return out
    }

    /// Every tensor, converted to f32 (bf16 matrices kept as bf16 with `keepBF16`).
    public func allTensors(keepBF16: Bool = false) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names { out[name] = try tensor(name, keepBF16: keepBF16) }
        return out
    }
}

extension SafetensorsFile {
    /// On the error path of the layout check only: a header that names a tensor twice (Foundation's parser keeps
    /// the later entry, so the file looked like one with a gap) is refused for what it is.
    static func refuseDuplicateName(_ header: Data, path: String) throws {
        var parser = JSONParser(bytes: Array(header))
        guard (try? parser.document()) != nil, let name = parser.firstTopLevelDuplicate else { return }
        throw GLMError("\(path): the header names '\(name)' twice; expected each tensor name once")
    }
}

/// Writes safetensors files.
public enum SafetensorsWriter {
    /// Writes `tensors` (sorted by name) stored as `dtype` (those `keepFloat32` names stay F32, as transformers'
    /// `_keep_in_fp32_modules_strict` keeps them), atomically: temporary file, fsync, rename.
    public static func write(_ tensors: [String: Tensor], to path: String, dtype fileDType: StorageDType = .float32,
                             metadata: [String: String] = ["format": "pt"], keepFloat32: (String) -> Bool = { _ in false }) throws {
        func dtypeOf(_ name: String) -> StorageDType { keepFloat32(name) ? .float32 : fileDType }
        // The header as the reference (safetensors' Rust serializer) writes it, byte for byte: __metadata__ first,
        // then the tensors by descending dtype (F32, BF16, F16) and name, each {"dtype","shape","data_offsets"}.
        func json(_ value: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]), as: UTF8.self)
        }
        let rank: [StorageDType: Int] = [.float32: 0, .bfloat16: 1, .float16: 2]
        let names = tensors.keys.sorted { (rank[dtypeOf($0)]!, $0) < (rank[dtypeOf($1)]!, $1) }
        var header = "{\"__metadata__\":\(try json(metadata))"
        var offset = 0
        for name in names {
            let t = tensors[name]!, dtype = dtypeOf(name)
            let bytes = t.count * dtype.byteCount
            header += ",\(try json(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        header += "}"
        var headerData = Data(header.utf8)
        while (8 + headerData.count) % 8 != 0 { headerData.append(0x20) }  // pad with spaces, as the reference does
        var file = Data(capacity: 8 + headerData.count + offset)
        withUnsafeBytes(of: UInt64(headerData.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(headerData)
        for name in names {
            let t = tensors[name]!, dtype = dtypeOf(name)
            switch dtype {
            case .float32:
                t.withFloatValues { file.append(Data(bytes: $0, count: t.count * 4)) }
            case .bfloat16 where t.bf16Bits != nil:
                file.append(Data(bytes: t.bf16Bits!, count: t.count * 2))
            case .bfloat16, .float16:
                var bits = [UInt16](repeating: 0, count: t.count)
                bits.withUnsafeMutableBufferPointer { b in
                    t.withFloatValues { src in
                        if dtype == .bfloat16 { DTypeConversion.floatToBF16(src, b.baseAddress!, t.count) }
                        else { DTypeConversion.floatToF16(src, b.baseAddress!, t.count) }
                    }
                }
                bits.withUnsafeBytes { file.append(contentsOf: $0) }
            }
        }
        try AtomicFile.write(file, to: path)
    }
}
