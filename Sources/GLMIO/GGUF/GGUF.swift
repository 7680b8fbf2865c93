// GGUF v3 (llama.cpp's file format): a little-endian header, ordered key/value metadata, tensor infos, then
// tensor data aligned to `general.alignment` (default 32). Written byte for byte as gguf-py's GGUFWriter writes
// it; read with bounds checks whose errors name the file.
import Foundation
import GLMCore

/// The type tag of a GGUF metadata value.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8
    case array = 9, uint64 = 10, int64 = 11, float64 = 12
}

/// A GGUF metadata value.
public indirect enum GGUFValue: Equatable, Sendable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float), bool(Bool)
    case string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// An array with its element type (every element has that type).
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        case .array: return .array
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }

    /// The value as an integer, for any integer type.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .uint8(let v): return "\(v)"
        case .int8(let v): return "\(v)"
        case .uint16(let v): return "\(v)"
        case .int16(let v): return "\(v)"
        case .uint32(let v): return "\(v)"
        case .int32(let v): return "\(v)"
        case .float32(let v): return "\(v)"
        case .bool(let v): return "\(v)"
        case .string(let s): return "'\(s)'"
        case .uint64(let v): return "\(v)"
        case .int64(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .array(_, let a):
            let shown = a.prefix(8).map(\.description).joined(separator: ", ")
            return "[\(shown)\(a.count > 8 ? ", … (\(a.count) items)" : "")]"
        }
    }
}

/// ggml tensor types GLMTrain reads and writes.
public enum GGMLType: UInt32, Sendable {
    case f32 = 0, f16 = 1, bf16 = 30

    public var byteCount: Int { self == .f32 ? 4 : 2 }
    public var name: String { self == .f32 ? "F32" : self == .f16 ? "F16" : "BF16" }

    /// Every ggml type id a GGUF file may hold (ggml.h), with its block of elements and the block's bytes
    /// (ggml-common.h): enough to check any tensor's byte range, quantized or not. Other ids are errors.
    static let layouts: [UInt32: (name: String, block: Int, bytes: Int)] = [
        0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
        7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
        12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
        16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
        20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
        24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
        29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    ]
}

/// One tensor of a GGUF file.
public struct GGUFTensorInfo: Equatable, Sendable {
    public var name: String
    /// ggml `ne` order: `ne[0]` is the innermost (contiguous) dimension.
    public var dimensions: [Int]
    /// The raw ggml type id (see `GGMLType` for the ones whose data can be read).
    public var typeID: UInt32
    /// Byte offset of the data from the start of the data section.
    public var offset: Int
    /// The row-major (PyTorch) shape: `dimensions` reversed.
    public var shape: [Int] { dimensions.reversed() }
    public var type: GGMLType? { GGMLType(rawValue: typeID) }
}

/// A GGUF file read into memory (metadata in file order, tensor infos, data on demand).
public final class GGUFFile {
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    public let path: String
    public let version: UInt32
    /// Key/value metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    let data: Data
    let dataStart: Int

    /// The most tensors and metadata entries a file may declare (llama.cpp's own files have a few thousand).
    public static let maxEntries = 1 << 20
    /// Metadata values read in all (array elements count one each; a vocabulary of 256K tokens with its merges and
    /// types is under 1M): each is held as its own value in memory, some 40 bytes, so a file of mostly one huge
    /// byte array cannot make the reader hold 40 times its size.
    public static let maxMetadataValues = 1 << 22
    /// The largest `general.alignment` accepted.
    public static let maxAlignment = 1 << 16

    /// Reads and checks `path`; errors name the file and what is wrong: counts and lengths that do not fit the
    /// file, unknown value or tensor types, duplicate keys or tensor names, and tensor data that runs past the end
    /// of the file or overlaps another tensor's.
    public init(path: String) throws {
        self.path = path
        let data: Data
        data = try FileInput.mapped(path, kind: "GGUF")
        var r = GGUFReader(data: data, path: path)
        guard try r.u32() == GGUFFile.magic else { throw GLMError("\(path): not a GGUF file (bad magic)") }
        version = try r.u32()
        guard version == 2 || version == 3 else { throw GLMError("\(path): GGUF version \(version) is not supported (expected 3)") }
        // Each entry takes some bytes of the file (a metadata entry at least 13, a tensor info at least 32), so a
        // count the rest of the file cannot hold is rejected before anything is reserved for it.
        let nTensors = try r.count("tensor count", minimumBytes: 32, limit: GGUFFile.maxEntries)
        let nKV = try r.count("metadata count", minimumBytes: 13, limit: GGUFFile.maxEntries)
        var kv: [(key: String, value: GGUFValue)] = []
        var keys = Set<String>()
        for i in 0..<nKV {
            let key = try r.string("key of metadata entry \(i)")
            guard keys.insert(key).inserted else { throw GLMError("\(path): metadata key '\(key)' appears twice") }
            let type = try r.u32()
            kv.append((key, try r.value(type: type, key: key)))
        }
        metadata = kv
        var alignment = 32
        if let v = kv.first(where: { $0.key == "general.alignment" })?.value {
            guard let a = v.intValue, a > 0, a <= GGUFFile.maxAlignment, a & (a - 1) == 0 else {
                throw GLMError("\(path): general.alignment \(v) is not a power of two up to \(GGUFFile.maxAlignment)")
            }
            alignment = a
        }
        self.alignment = alignment
        var infos: [GGUFTensorInfo] = []
        var names = Set<String>()
        for i in 0..<nTensors {
            let name = try r.string("name of tensor \(i)")
            guard names.insert(name).inserted else { throw GLMError("\(path): tensor '\(name)' appears twice") }
            let nDims = try r.u32()
            guard nDims >= 1 && nDims <= 4 else { throw GLMError("\(path): tensor '\(name)' has \(nDims) dimensions (expected 1–4)") }
            var dims: [Int] = []
            for _ in 0..<nDims { dims.append(try r.count("dimension of '\(name)'")) }
            let type = try r.u32()
            let offset = try r.count("offset of '\(name)'")
            infos.append(GGUFTensorInfo(name: name, dimensions: dims, typeID: type, offset: offset))
        }
        tensors = infos
        dataStart = (r.position + alignment - 1) / alignment * alignment
        self.data = data
        // Every tensor's bytes lie inside the file, aligned, and no two tensors share bytes.
        var ranges: [(begin: Int, end: Int, name: String)] = []
        for t in infos {
            guard let layout = GGMLType.layouts[t.typeID] else {
                throw GLMError("\(path): tensor '\(t.name)' has unknown ggml type \(t.typeID)")
            }
            let elements = try Checked.elementCount(t.dimensions, "\(path): tensor '\(t.name)'")
            guard t.dimensions[0] % layout.block == 0 else {
                throw GLMError("\(path): tensor '\(t.name)' of type \(layout.name) has \(t.dimensions[0]) elements per row; expected a multiple of its block of \(layout.block)")
            }
            let bytes = try Checked.multiply(elements / layout.block, layout.bytes, "\(path): tensor '\(t.name)' byte size")
            guard t.offset % alignment == 0 else {
                throw GLMError("\(path): tensor '\(t.name)' data offset \(t.offset) is not a multiple of the alignment \(alignment)")
            }
            let begin = dataStart + t.offset   // both < 2^38 (counts are bounded), so no overflow
            let (end, overflow) = begin.addingReportingOverflow(bytes)
            guard !overflow, end <= data.count else {
                throw GLMError("\(path): tensor '\(t.name)' data [\(t.offset), \(t.offset) + \(bytes)) lies outside the file's \(max(0, data.count - dataStart)) data bytes (truncated?)")
            }
            if bytes > 0 { ranges.append((begin, end, t.name)) }
        }
        ranges.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.begin < a.end {
            throw GLMError("\(path): tensor '\(b.name)' data starts at \(b.begin - dataStart), inside tensor '\(a.name)' (data \(a.begin - dataStart)..<\(a.end - dataStart)); tensors overlap")
        }
    }

    /// The first value stored under `key`.
    public func value(_ key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    /// The tensor `name` as f32 in its row-major shape.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors.first(where: { $0.name == name }) else { throw GLMError("\(path): no tensor named '\(name)'") }
        guard let type = info.type else { throw GLMError("\(path): tensor '\(name)' has ggml type \(info.typeID); only F32, F16 and BF16 are read") }
        let out = Tensor(uninitialized: info.shape)
        let n = out.count
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + info.offset
            switch type {
            case .f32: UnsafeMutableRawPointer(out.pointer).copyMemory(from: src, byteCount: n * 4)
            case .f16: for i in 0..<n { out.pointer[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            case .bf16: for i in 0..<n { out.pointer[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
            }
        }
        return out
    }
}

/// A cursor over GGUF bytes.
struct GGUFReader {
    let data: Data
    let path: String
    var position = 0
    /// Metadata values read so far (bounded by `GGUFFile.maxMetadataValues`).
    var values = 0

    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard position + size <= data.count else { throw GLMError("\(path): truncated GGUF file (at offset \(position))") }
        let v = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: position, as: T.self) }
        position += size
        return T(littleEndian: v)
    }

    mutating func u32() throws -> UInt32 { try load(UInt32.self) }

    var remaining: Int { data.count - position }

    /// A uint64 count of things that take at least `minimumBytes` each in the rest of the file (0: a size or an
    /// offset, bounded by 2^37), and at most `limit`.
    mutating func count(_ what: String, minimumBytes: Int = 0, limit: Int = Int(Int32.max) * 64) throws -> Int {
        let at = position
        let v = try load(UInt64.self)
        guard v <= UInt64(limit) else { throw GLMError("\(path): implausible \(what) \(v) at offset \(at) (at most \(limit))") }
        let n = Int(v)
        if minimumBytes > 0 && n > remaining / minimumBytes {
            throw GLMError("\(path): truncated GGUF file: \(what) \(n) at offset \(at) does not fit the \(remaining) bytes left")
        }
        return n
    }

    /// A length-prefixed string; `what` names it in errors (a key, a tensor name, a value).
    mutating func string(_ what: String) throws -> String {
        let n = try count("length of the \(what)", minimumBytes: 1)
        let s = String(decoding: data[data.startIndex + position ..< data.startIndex + position + n], as: UTF8.self)
        position += n
        return s
    }

    /// The bytes a value of `type` takes at least (for bounding array lengths).
    static func minimumBytes(_ type: GGUFValueType) -> Int {
        switch type {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }

    /// The deepest arrays of arrays read (gguf-py writes at most two levels).
    static let maxArrayDepth = 8

    mutating func value(type raw: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        guard let type = GGUFValueType(rawValue: raw) else { throw GLMError("\(path): key '\(key)' has unknown value type \(raw)") }
        values += 1
        guard values <= GGUFFile.maxMetadataValues else {
            throw GLMError("\(path): key '\(key)': more than \(GGUFFile.maxMetadataValues) metadata values (array elements included) in all")
        }
        switch type {
        case .uint8: return .uint8(try load(UInt8.self))
        case .int8: return .int8(try load(Int8.self))
        case .uint16: return .uint16(try load(UInt16.self))
        case .int16: return .int16(try load(Int16.self))
        case .uint32: return .uint32(try load(UInt32.self))
        case .int32: return .int32(try load(Int32.self))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self)))
        case .bool: return .bool(try load(UInt8.self) != 0)
        case .string: return .string(try string("string value of '\(key)'"))
        case .uint64: return .uint64(try load(UInt64.self))
        case .int64: return .int64(try load(Int64.self))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self)))
        case .array:
            guard depth < GGUFReader.maxArrayDepth else {
                throw GLMError("\(path): key '\(key)' nests arrays deeper than \(GGUFReader.maxArrayDepth) levels")
            }
            let elementRaw = try u32()
            guard let element = GGUFValueType(rawValue: elementRaw) else {
                throw GLMError("\(path): key '\(key)' has an array of unknown type \(elementRaw)")
            }
            let n = try count("array length of '\(key)'", minimumBytes: GGUFReader.minimumBytes(element))
            guard n <= GGUFFile.maxMetadataValues - values else {
                throw GLMError("\(path): key '\(key)': an array of \(n) elements passes the \(GGUFFile.maxMetadataValues) metadata values read in all")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementRaw, key: key, depth: depth + 1)) }
            return .array(element, items)
        }
    }
}

/// Builds a GGUF v3 file: metadata in the order added, then tensors in the order added.
public struct GGUFWriter {
    public var metadata: [(key: String, value: GGUFValue)] = []
    public var tensors: [(name: String, tensor: Tensor, type: GGMLType)] = []
    public var alignment = 32

    public init() {}

    public mutating func add(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }
    public mutating func add(tensor: Tensor, name: String, type: GGMLType = .f32) { tensors.append((name, tensor, type)) }

    /// The file bytes.
    public func data() -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { let b = Array(s.utf8); u64(UInt64(b.count)); out.append(contentsOf: b) }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float64(let x): u64(x.bitPattern)
            case .array(let t, let items):
                u32(t.rawValue); u64(UInt64(items.count))
                for item in items { value(item) }
            }
        }
        func pad() { while out.count % alignment != 0 { out.append(0) } }
        u32(GGUFFile.magic); u32(3); u64(UInt64(tensors.count)); u64(UInt64(metadata.count))
        for (k, v) in metadata { string(k); u32(v.type.rawValue); value(v) }
        var offset = 0
        for t in tensors {
            string(t.name)
            let dims = t.tensor.shape.reversed()
            u32(UInt32(dims.count))
            for d in dims { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            let bytes = t.tensor.count * t.type.byteCount
            offset += (bytes + alignment - 1) / alignment * alignment
        }
        pad()
        for t in tensors {
            let x = t.tensor, n = x.count
            switch t.type {
            case .f32: out.append(Data(bytes: x.pointer, count: n * 4))
            case .f16, .bf16:
                var bits = [UInt16](repeating: 0, count: n)
                bits.withUnsafeMutableBufferPointer { b in
                    if t.type == .bf16 { DTypeConversion.floatToBF16(x.pointer, b.baseAddress!, n) }
                    else { DTypeConversion.floatToF16(x.pointer, b.baseAddress!, n) }
                }
                bits.withUnsafeBytes { out.append(contentsOf: $0) }
            }
            pad()
        }
        return out
    }

    /// Writes the file atomically.
    public func write(to path: String) throws { try AtomicFile.write(data(), to: path) }
}
