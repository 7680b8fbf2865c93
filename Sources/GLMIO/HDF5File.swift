// A small safe wrapper over the HDF5 C API: files, groups, typed datasets and string attributes.
// Every handle is closed on every path; HDF5's own error printing is off and its errors become GLMError.
import CHDF5
import Foundation
import GLMCore

/// HDF5 process state: one lock around all calls, automatic error printing off, error stack → text.
enum HDF5Runtime {
    static let lock = NSRecursiveLock()
    /// HDF5's own exit handler is not installed: every file is closed explicitly, and after a failed write (disk
    /// full) HDF5 keeps the file it could not flush, which its exit handler would then flush again and crash in.
    static let opened: Bool = { _ = H5dont_atexit(); return H5open() >= 0 }()

    /// Runs `body` holding the HDF5 lock, with HDF5's automatic error printing silenced on this thread.
    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = opened
        H5Eset_auto2(0 /* H5E_DEFAULT */, nil, nil)
        return try body()
    }

    private final class Messages { var items: [String] = [] }

    /// The most specific message on the current HDF5 error stack (then clears the stack), or nil.
    static func takeErrorDetail() -> String? {
        let box = Messages()
        let context = Unmanaged.passUnretained(box).toOpaque()
        _ = H5Ewalk2(0, H5E_WALK_DOWNWARD, { _, error, context in
            guard let error, let context, let desc = error.pointee.desc else { return 0 }
            let text = String(cString: desc).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { Unmanaged<Messages>.fromOpaque(context).takeUnretainedValue().items.append(text) }
            return 0
        }, context)
        _ = H5Eclear2(0)
        guard let last = box.items.last else { return nil }
        // A failed system call is reported with a dump of its arguments; keep only the system's message.
        if let r = last.range(of: "error message = '"), let end = last[r.upperBound...].firstIndex(of: "'") {
            return String(last[r.upperBound..<end])
        }
        return last.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// An open HDF5 file. Object names are HDF5 paths ("/group/dataset"); the caller keeps names free of
/// characters HDF5 treats specially. Errors are `GLMError`s naming the file and the object.
///
/// All calls hold one process-wide lock, so a file may be used from any thread (one call at a time).
public final class HDF5File {
    /// The path the file was opened or created with.
    public let path: String
    private var id: hid_t
    /// The file's size when it was opened for reading (Int.max for a file being written): no dataset or attribute
    /// read from it can hold more bytes, whatever its header claims, so nothing larger is allocated.
    private let byteLimit: Int

    private init(path: String, id: hid_t, byteLimit: Int = .max) {
        self.path = path
        self.id = id
        self.byteLimit = byteLimit
    }

    deinit { try? close() }

    /// The file-access properties every file uses: 1.8-format objects (checksummed headers), strong close,
    /// and file locking that is skipped on file systems without it.
    private static func makeAccessList() -> hid_t {
        let fapl = H5Pcreate(H5P_CLS_FILE_ACCESS_ID_g)
        guard fapl >= 0 else { return -1 }
        guard H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) >= 0,
              H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0,
              H5Pset_file_locking(fapl, true, true) >= 0 else {
            H5Pclose(fapl)
            return -1
        }
        return fapl
    }

    /// Creates (or truncates) `path` as a new HDF5 file open for writing.
    public static func create(_ path: String) throws -> HDF5File {
        try HDF5Runtime.locked {
            let fapl = makeAccessList()
            guard fapl >= 0 else { throw error(path, "cannot set up file access properties", nil) }
            defer { H5Pclose(fapl) }
            let id = H5Fcreate(path, 0x0002 /* H5F_ACC_TRUNC */, 0 /* H5P_DEFAULT */, fapl)
            guard id >= 0 else { throw error(path, "cannot create HDF5 file", nil) }
            return HDF5File(path: path, id: id)
        }
    }

    /// Opens an existing HDF5 file, read-only unless `writable`. A missing file or one that is not HDF5
    /// (or is truncated) throws.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        try HDF5Runtime.locked {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw GLMError("\(path): cannot open (\(String(cString: strerror(errno))))")
            }
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw GLMError("\(path): not a regular file") }
            let isHDF5 = H5Fis_hdf5(path)
            guard isHDF5 > 0 else {
                let detail = HDF5Runtime.takeErrorDetail()
                if isHDF5 == 0 { throw GLMError("\(path): not an HDF5 file (no HDF5 signature found)") }
                throw GLMError("\(path): cannot read as HDF5\(detail.map { " (\($0))" } ?? "")")
            }
            let fapl = makeAccessList()
            guard fapl >= 0 else { throw error(path, "cannot set up file access properties", nil) }
            defer { H5Pclose(fapl) }
            let id = H5Fopen(path, writable ? 0x0001 /* H5F_ACC_RDWR */ : 0x0000 /* H5F_ACC_RDONLY */, fapl)
            guard id >= 0 else { throw error(path, "cannot open as HDF5 (damaged or truncated?)", nil) }
            return HDF5File(path: path, id: id, byteLimit: writable ? .max : Int(st.st_size))
        }
    }

    /// Writes buffered data and metadata to the file (not an fsync).
    public func flush() throws {
        try HDF5Runtime.locked {
            let file = try handle()
            guard H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 else { throw fail("cannot flush", nil) }
        }
    }

    /// Closes the file (and any object left open in it). Calling it again does nothing.
    public func close() throws {
        try HDF5Runtime.locked {
            guard id >= 0 else { return }
            let file = id
            id = -1
            guard H5Fclose(file) >= 0 else { throw fail("cannot close", nil) }
        }
    }

    // MARK: groups and links

    /// Creates the group `name` (its parent must exist).
    public func createGroup(_ name: String) throws {
        try HDF5Runtime.locked {
            let file = try handle()
            let lcpl = try linkCreationList(name)
            defer { H5Pclose(lcpl) }
            let group = H5Gcreate2(file, name, lcpl, 0, 0)
            guard group >= 0 else { throw fail("cannot create group", name) }
            H5Gclose(group)
        }
    }

    /// Whether a link `name` exists (every parent on the path must exist too).
    public func exists(_ name: String) -> Bool {
        HDF5Runtime.locked {
            guard id >= 0 else { return false }
            if name == "/" { return true }
            var prefix = ""
            for part in name.split(separator: "/", omittingEmptySubsequences: true) {
                prefix += "/" + part
                guard H5Lexists(id, prefix, 0) > 0 else { _ = HDF5Runtime.takeErrorDetail(); return false }
            }
            return true
        }
    }

    /// The names of the links directly inside group `name`, in HDF5's name order.
    public func children(of name: String) throws -> [String] {
        try HDF5Runtime.locked {
            let file = try handle()
            let group = H5Gopen2(file, name, 0)
            guard group >= 0 else { throw fail("cannot open group", name) }
            defer { H5Gclose(group) }
            var info = H5G_info_t()
            guard H5Gget_info(group, &info) >= 0 else { throw fail("cannot list group", name) }
            var names: [String] = []
            for i in 0..<info.nlinks {
                let length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, 0)
                guard length >= 0 else { throw fail("cannot read a link name in group", name) }
                var bytes = [CChar](repeating: 0, count: Int(length) + 1)
                guard H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, &bytes, bytes.count, 0) >= 0 else {
                    throw fail("cannot read a link name in group", name)
                }
                names.append(String(decoding: bytes.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return names
        }
    }

    // MARK: datasets

    /// Writes a float32 dataset of `shape` (`[]` is a scalar) from `count(shape)` contiguous values.
    public func writeFloat32(_ name: String, shape: [Int], values: UnsafePointer<Float>?) throws {
        try HDF5Runtime.locked {
            try writeDataset(name, type: H5T_NATIVE_FLOAT_g, shape: shape, bytes: values.map { UnsafeRawPointer($0) })
        }
    }

    /// Writes `tensor` (its shape and elements) as a float32 dataset.
    public func write(_ tensor: Tensor, as name: String) throws {
        try writeFloat32(name, shape: tensor.shape, values: tensor.count > 0 ? UnsafePointer(tensor.pointer) : nil)
    }

    /// Reads a float32 dataset into a new tensor of the stored shape.
    public func readTensor(_ name: String) throws -> Tensor {
        try HDF5Runtime.locked {
            var result: Tensor?
            try readDataset(name, memoryType: H5T_NATIVE_FLOAT_g, expected: .float32) { shape, read in
                let t = Tensor(uninitialized: shape)
                if t.count > 0 { try read(UnsafeMutableRawPointer(t.pointer)) }
                result = t
            }
            return result!
        }
    }

    /// Writes a dataset of 8-byte numbers of HDF5 memory type `type`.
    private func writeNumbers<T>(_ name: String, _ values: [T], type: hid_t, shape: [Int]?) throws {
        try HDF5Runtime.locked {
            try values.withUnsafeBytes { raw in
                try writeDataset(name, type: type, shape: shape ?? [values.count],
                                 bytes: values.isEmpty ? nil : raw.baseAddress, count: values.count)
            }
        }
    }

    /// Writes an int64 dataset; `shape` defaults to one dimension of `values.count` (`[]` is a scalar).
    public func writeInt64(_ name: String, _ values: [Int64], shape: [Int]? = nil) throws {
        try writeNumbers(name, values, type: H5T_NATIVE_INT64_g, shape: shape)
    }

    /// Reads an int64 dataset: its values (row-major) and shape.
    public func readInt64(_ name: String) throws -> (values: [Int64], shape: [Int]) {
        try HDF5Runtime.locked { try readArray(name, memoryType: H5T_NATIVE_INT64_g, expected: .int64) }
    }

    /// Writes a uint64 dataset; `shape` defaults to one dimension of `values.count` (`[]` is a scalar).
    public func writeUInt64(_ name: String, _ values: [UInt64], shape: [Int]? = nil) throws {
        try writeNumbers(name, values, type: H5T_NATIVE_UINT64_g, shape: shape)
    }

    /// Reads a uint64 dataset: its values (row-major) and shape.
    public func readUInt64(_ name: String) throws -> (values: [UInt64], shape: [Int]) {
        try HDF5Runtime.locked { try readArray(name, memoryType: H5T_NATIVE_UINT64_g, expected: .uint64) }
    }

    /// Writes a float64 dataset; `shape` defaults to one dimension of `values.count` (`[]` is a scalar).
    public func writeFloat64(_ name: String, _ values: [Double], shape: [Int]? = nil) throws {
        try writeNumbers(name, values, type: H5T_NATIVE_DOUBLE_g, shape: shape)
    }

    /// Reads a float64 dataset: its values (row-major) and shape.
    public func readFloat64(_ name: String) throws -> (values: [Double], shape: [Int]) {
        try HDF5Runtime.locked { try readArray(name, memoryType: H5T_NATIVE_DOUBLE_g, expected: .float64) }
    }

    /// Writes `value` as a scalar fixed-length UTF-8 string dataset holding exactly its bytes
    /// (an empty string is stored with an empty dataspace).
    public func writeString(_ name: String, _ value: String) throws {
        try HDF5Runtime.locked {
            let file = try handle()
            let bytes = Array(value.utf8)
            try withStringStorage(bytes, name, spaceError: "cannot create dataspace for") { type, space in
                let lcpl = try linkCreationList(name)
                defer { H5Pclose(lcpl) }
                let dataset = H5Dcreate2(file, name, type, space, lcpl, 0, 0)
                guard dataset >= 0 else { throw fail("cannot create dataset", name) }
                defer { H5Dclose(dataset) }
                if !bytes.isEmpty {
                    guard H5Dwrite(dataset, type, 0, 0, 0, bytes) >= 0 else { throw fail("cannot write dataset", name) }
                }
            }
        }
    }

    /// Reads a fixed-length string dataset written by `writeString`.
    public func readString(_ name: String) throws -> String {
        try HDF5Runtime.locked {
            let file = try handle()
            let dataset = H5Dopen2(file, name, 0)
            guard dataset >= 0 else { throw fail("cannot open dataset", name) }
            defer { H5Dclose(dataset) }
            return try readScalarString(
                type: H5Dget_type(dataset), space: H5Dget_space(dataset), name, what: "dataset '\(name)'",
                typeError: "cannot read the type of dataset", spaceError: "cannot read the shape of dataset",
                checkSize: { size in
                    guard size > 0, size <= self.byteLimit, H5Dget_storage_size(dataset) == UInt64(size) else {
                        throw GLMError("\(self.path): dataset '\(name)' stores \(H5Dget_storage_size(dataset)) bytes, expected \(size) (truncated or corrupt)")
                    }
                },
                read: { memType, buffer in
                    guard H5Dread(dataset, memType, 0, 0, 0, buffer) >= 0 else { throw self.fail("cannot read dataset", name) }
                })
        }
    }

    /// The shape of dataset `name` (`[]` for a scalar).
    public func shape(of name: String) throws -> [Int] {
        try HDF5Runtime.locked {
            let file = try handle()
            let dataset = H5Dopen2(file, name, 0)
            guard dataset >= 0 else { throw fail("cannot open dataset", name) }
            defer { H5Dclose(dataset) }
            return try datasetShape(dataset, name)
        }
    }

    // MARK: attributes

    /// Sets (or replaces) the string attribute `attribute` on the object `object` (a group or dataset).
    public func setAttribute(_ attribute: String, _ value: String, on object: String = "/") throws {
        try HDF5Runtime.locked {
            try withAttribute(attribute, on: object) { target, present in
                if present, H5Adelete(target, attribute) < 0 {
                    throw fail("cannot replace attribute '\(attribute)' on", object)
                }
                let bytes = Array(value.utf8)
                try withStringStorage(bytes, object, spaceError: "cannot create dataspace for attribute '\(attribute)' on") { type, space in
                    let attr = H5Acreate2(target, attribute, type, space, 0, 0)
                    guard attr >= 0 else { throw fail("cannot create attribute '\(attribute)' on", object) }
                    defer { H5Aclose(attr) }
                    if !bytes.isEmpty, H5Awrite(attr, type, bytes) < 0 {
                        throw fail("cannot write attribute '\(attribute)' on", object)
                    }
                }
            }
        }
    }

    /// The string attribute `attribute` of `object`, or nil when the object has no such attribute.
    public func attribute(_ attribute: String, of object: String = "/") throws -> String? {
        try HDF5Runtime.locked {
            try withAttribute(attribute, on: object) { target, present -> String? in
                guard present else { return nil }
                let attr = H5Aopen(target, attribute, 0)
                guard attr >= 0 else { throw fail("cannot open attribute '\(attribute)' on", object) }
                defer { H5Aclose(attr) }
                return try readScalarString(
                    type: H5Aget_type(attr), space: H5Aget_space(attr), object, what: "attribute '\(attribute)' on '\(object)'",
                    typeError: "cannot read the type of attribute '\(attribute)' on",
                    spaceError: "cannot read the shape of attribute '\(attribute)' on",
                    checkSize: { size in
                        guard size > 0, size < 1 << 30, size <= self.byteLimit else {
                            throw GLMError("\(self.path): attribute '\(attribute)' on '\(object)' has an invalid size \(size)")
                        }
                    },
                    read: { memType, buffer in
                        guard H5Aread(attr, memType, buffer) >= 0 else { throw self.fail("cannot read attribute '\(attribute)' on", object) }
                    })
            }
        }
    }

    /// Removes the attribute `attribute` from `object` if it is there.
    public func removeAttribute(_ attribute: String, from object: String = "/") throws {
        try HDF5Runtime.locked {
            try withAttribute(attribute, on: object) { target, present in
                if present, H5Adelete(target, attribute) < 0 {
                    throw fail("cannot remove attribute '\(attribute)' from", object)
                }
            }
        }
    }

    // MARK: internals (called with the lock held)

    /// Element types datasets are checked against on reading.
    enum ElementType {
        case float32, float64, int64, uint64
        var typeClass: H5T_class_t { self == .float32 || self == .float64 ? H5T_FLOAT : H5T_INTEGER }
        var size: Int { self == .float32 ? 4 : 8 }
        var name: String {
            switch self {
            case .float32: return "float32"
            case .float64: return "float64"
            case .int64: return "int64"
            case .uint64: return "uint64"
            }
        }
        var signed: Bool? {
            switch self {
            case .int64: return true
            case .uint64: return false
            default: return nil
            }
        }
    }

    private func handle() throws -> hid_t {
        guard id >= 0 else { throw GLMError("\(path): the HDF5 file is already closed") }
        return id
    }

    private static func error(_ path: String, _ what: String, _ object: String?) -> GLMError {
        let detail = HDF5Runtime.takeErrorDetail()
        let target = object.map { " '\($0)'" } ?? ""
        return GLMError("\(path): \(what)\(target)\(detail.map { " (HDF5: \($0))" } ?? "")")
    }

    private func fail(_ what: String, _ object: String?) -> GLMError { HDF5File.error(path, what, object) }

    private func linkCreationList(_ name: String) throws -> hid_t {
        let lcpl = H5Pcreate(H5P_CLS_LINK_CREATE_ID_g)
        guard lcpl >= 0 else { throw fail("cannot set up link properties for", name) }
        guard H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) >= 0 else {
            H5Pclose(lcpl)
            throw fail("cannot set up link properties for", name)
        }
        return lcpl
    }

    /// The byte size of a scalar fixed-length string of `type` over `space`, nil for an empty (null) one;
    /// `what` names the dataset or attribute in the error otherwise.
    private func scalarStringSize(type: hid_t, space: hid_t, _ what: String) throws -> Int? {
        guard H5Tget_class(type) == H5T_STRING, H5Tis_variable_str(type) == 0 else {
            throw GLMError("\(path): \(what) is not a fixed-length string")
        }
        let spaceClass = H5Sget_simple_extent_type(space)
        if spaceClass == H5S_NULL { return nil }
        guard spaceClass == H5S_SCALAR else { throw GLMError("\(path): \(what) is not a scalar string") }
        return H5Tget_size(type)
    }

    /// Opens `object` and looks `attribute` up on it: `body(object handle, whether the attribute exists)`.
    private func withAttribute<T>(_ attribute: String, on object: String, _ body: (hid_t, Bool) throws -> T) throws -> T {
        let target = H5Oopen(try handle(), object, 0)
        guard target >= 0 else { throw fail("cannot open object", object) }
        defer { H5Oclose(target) }
        let present = H5Aexists(target, attribute)
        guard present >= 0 else { throw fail("cannot look up attribute '\(attribute)' on", object) }
        return try body(target, present > 0)
    }

    /// The fixed-length UTF-8 string type and the dataspace (scalar; null for "") that store `bytes`.
    private func withStringStorage<T>(_ bytes: [UInt8], _ name: String, spaceError: String,
                                      _ body: (_ type: hid_t, _ space: hid_t) throws -> T) throws -> T {
        let type = try stringType(bytes.count, name)
        defer { H5Tclose(type) }
        let space = H5Screate(bytes.isEmpty ? H5S_NULL : H5S_SCALAR)
        guard space >= 0 else { throw fail(spaceError, name) }
        defer { H5Sclose(space) }
        return try body(type, space)
    }

    /// Reads a scalar fixed-length string of a dataset or attribute whose `type` and `space` handles are given
    /// (closed here): "" for a null dataspace, else `checkSize` vets the size before `read` fills the buffer.
    private func readScalarString(type: hid_t, space: hid_t, _ name: String, what: String, typeError: String, spaceError: String,
                                  checkSize: (Int) throws -> Void,
                                  read: (_ memType: hid_t, _ buffer: UnsafeMutableRawPointer) throws -> Void) throws -> String {
        defer { if type >= 0 { H5Tclose(type) }; if space >= 0 { H5Sclose(space) } }
        guard type >= 0 else { throw fail(typeError, name) }
        guard space >= 0 else { throw fail(spaceError, name) }
        guard let size = try scalarStringSize(type: type, space: space, what) else { return "" }
        try checkSize(size)
        let memType = try stringType(size, name)
        defer { H5Tclose(memType) }
        var bytes = [UInt8](repeating: 0, count: size)
        try bytes.withUnsafeMutableBytes { try read(memType, $0.baseAddress!) }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func stringType(_ byteCount: Int, _ name: String) throws -> hid_t {
        let type = H5Tcopy(H5T_C_S1_g)
        guard type >= 0 else { throw fail("cannot create a string type for", name) }
        guard H5Tset_size(type, max(1, byteCount)) >= 0, H5Tset_strpad(type, H5T_STR_NULLPAD) >= 0,
              H5Tset_cset(type, H5T_CSET_UTF8) >= 0 else {
            H5Tclose(type)
            throw fail("cannot create a string type for", name)
        }
        return type
    }

    private func elementCount(_ shape: [Int], _ name: String) throws -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw GLMError("\(path): dataset '\(name)' has a negative dimension in shape \(shape)") }
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { throw GLMError("\(path): dataset '\(name)' shape \(shape) is too large") }
            n = product
        }
        return n
    }

    private func writeDataset(_ name: String, type: hid_t, shape: [Int], bytes: UnsafeRawPointer?,
                              count: Int? = nil) throws {
        let file = try handle()
        let n = try elementCount(shape, name)
        if let count, count != n {
            throw GLMError("\(path): dataset '\(name)' has \(count) values but shape \(shape) needs \(n)")
        }
        guard shape.count <= 32 else { throw GLMError("\(path): dataset '\(name)' has rank \(shape.count); at most 32") }
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            let dims = shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(dims.count), dims, nil)
        }
        guard space >= 0 else { throw fail("cannot create dataspace for", name) }
        defer { H5Sclose(space) }
        let lcpl = try linkCreationList(name)
        defer { H5Pclose(lcpl) }
        let dataset = H5Dcreate2(file, name, type, space, lcpl, 0, 0)
        guard dataset >= 0 else { throw fail("cannot create dataset", name) }
        defer { H5Dclose(dataset) }
        if n > 0 {
            guard let bytes else { throw GLMError("\(path): dataset '\(name)' has no values to write") }
            guard H5Dwrite(dataset, type, 0, 0, 0, bytes) >= 0 else { throw fail("cannot write dataset", name) }
        }
    }

    private func datasetShape(_ dataset: hid_t, _ name: String) throws -> [Int] {
        let space = H5Dget_space(dataset)
        guard space >= 0 else { throw fail("cannot read the shape of dataset", name) }
        defer { H5Sclose(space) }
        switch H5Sget_simple_extent_type(space) {
        case H5S_SCALAR: return []
        case H5S_SIMPLE:
            let rank = H5Sget_simple_extent_ndims(space)
            guard rank >= 0, rank <= 32 else { throw fail("cannot read the shape of dataset", name) }
            var dims = [hsize_t](repeating: 0, count: Int(rank))
            guard H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else {
                throw fail("cannot read the shape of dataset", name)
            }
            guard dims.allSatisfy({ $0 <= hsize_t(Int.max) }) else {
                throw GLMError("\(path): dataset '\(name)' has an impossible shape \(dims)")
            }
            return dims.map { Int($0) }
        default:
            throw GLMError("\(path): dataset '\(name)' has no elements (null dataspace)")
        }
    }

    /// Opens `name`, checks its element type and that its stored bytes match its shape, then calls
    /// `fill(shape, read)`; `read(pointer)` reads every element into `pointer`.
    private func readDataset(_ name: String, memoryType: hid_t, expected: ElementType,
                             fill: ([Int], (UnsafeMutableRawPointer) throws -> Void) throws -> Void) throws {
        let file = try handle()
        let dataset = H5Dopen2(file, name, 0)
        guard dataset >= 0 else { throw fail("cannot open dataset", name) }
        defer { H5Dclose(dataset) }
        let type = H5Dget_type(dataset)
        guard type >= 0 else { throw fail("cannot read the type of dataset", name) }
        defer { H5Tclose(type) }
        var typeOK = H5Tget_class(type) == expected.typeClass && H5Tget_size(type) == expected.size
        if typeOK, let signed = expected.signed { typeOK = (H5Tget_sign(type) == H5T_SGN_2) == signed }
        guard typeOK else { throw GLMError("\(path): dataset '\(name)' is not \(expected.name)") }
        let shape = try datasetShape(dataset, name)
        let n = try elementCount(shape, name)
        let (bytes, overflow) = n.multipliedReportingOverflow(by: expected.size)
        let stored = H5Dget_storage_size(dataset)
        guard !overflow, stored == UInt64(bytes) else {
            throw GLMError("\(path): dataset '\(name)' of shape \(shape) stores \(stored) bytes, expected \(overflow ? "more than Int.max" : String(bytes)) (truncated or corrupt)")
        }
        guard bytes <= byteLimit else {
            throw GLMError("\(path): dataset '\(name)' of shape \(shape) claims \(bytes) bytes, more than the file's \(byteLimit) (corrupt)")
        }
        try fill(shape) { pointer in
            guard n > 0 else { return }
            guard H5Dread(dataset, memoryType, 0, 0, 0, pointer) >= 0 else { throw self.fail("cannot read dataset", name) }
        }
    }

    private func readArray<T: FixedWidthInteger>(_ name: String, memoryType: hid_t,
                                                 expected: ElementType) throws -> (values: [T], shape: [Int]) {
        var values: [T] = []
        var shape: [Int] = []
        try readDataset(name, memoryType: memoryType, expected: expected) { s, read in
            shape = s
            values = [T](repeating: 0, count: Tensor.elementCount(s))
            if !values.isEmpty { try values.withUnsafeMutableBytes { try read($0.baseAddress!) } }
        }
        return (values, shape)
    }

    private func readArray(_ name: String, memoryType: hid_t, expected: ElementType) throws -> (values: [Double], shape: [Int]) {
        var values: [Double] = []
        var shape: [Int] = []
        try readDataset(name, memoryType: memoryType, expected: expected) { s, read in
            shape = s
            values = [Double](repeating: 0, count: Tensor.elementCount(s))
            if !values.isEmpty { try values.withUnsafeMutableBytes { try read($0.baseAddress!) } }
        }
        return (values, shape)
    }
}
