/// A value decoded from a MaxMind DB data (or metadata) section.
///
/// Maps keep the order of the file. Equality compares maps as sets of key/value pairs (order does
/// not matter; the format does not give order a meaning), everything else structurally.
/// (Not `indirect`: maps and arrays already hold their elements out of line, and boxing every
/// scalar would cost an allocation per decoded value.)
public enum MMDBValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case double(Double)
    case bytes([UInt8])
    case uint16(UInt16)
    case uint32(UInt32)
    case map([(key: String, value: MMDBValue)])
    case int32(Int32)
    case uint64(UInt64)
    /// A 128-bit unsigned integer as its high and low 64 bits.
    case uint128(high: UInt64, low: UInt64)
    case array([MMDBValue])
    case bool(Bool)
    case float(Float)

    // MARK: Access

    /// The value for `key` when this is a map (the first entry with that key), else nil.
    public subscript(key: String) -> MMDBValue? {
        guard case .map(let entries) = self else { return nil }
        for e in entries where e.key == key { return e.value }
        return nil
    }

    /// The element at `index` when this is an array and the index is in range, else nil.
    public subscript(index: Int) -> MMDBValue? {
        guard case .array(let items) = self, index >= 0, index < items.count else { return nil }
        return items[index]
    }

    /// The value at a path of map keys, e.g. `value(at: "city", "names", "en")`.
    public func value(at path: String...) -> MMDBValue? {
        var v: MMDBValue? = self
        for key in path { v = v?[key] }
        return v
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// A `double` or a `float` widened to `Double`.
    public var double: Double? {
        switch self {
        case .double(let d): return d
        case .float(let f): return Double(f)
        default: return nil
        }
    }

    /// Any unsigned integer type whose value fits in `UInt64`, or a non-negative `int32`.
    public var uint: UInt64? {
        switch self {
        case .uint16(let v): return UInt64(v)
        case .uint32(let v): return UInt64(v)
        case .uint64(let v): return v
        case .uint128(let h, let l): return h == 0 ? l : nil
        case .int32(let v): return v >= 0 ? UInt64(v) : nil
        default: return nil
        }
    }

    /// Any integer type whose value fits in `Int`.
    public var int: Int? {
        if case .int32(let v) = self { return Int(v) }
        guard let u = uint else { return nil }
        return Int(exactly: u)
    }

    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var array: [MMDBValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The map's entries in file order.
    public var mapEntries: [(key: String, value: MMDBValue)]? {
        if case .map(let m) = self { return m }
        return nil
    }

    /// The name of the value's type as the specification spells it.
    public var typeName: String {
        switch self {
        case .string: return "utf8_string"
        case .double: return "double"
        case .bytes: return "bytes"
        case .uint16: return "uint16"
        case .uint32: return "uint32"
        case .map: return "map"
        case .int32: return "int32"
        case .uint64: return "uint64"
        case .uint128: return "uint128"
        case .array: return "array"
        case .bool: return "boolean"
        case .float: return "float"
        }
    }

    // MARK: Equatable, text

    public static func == (lhs: MMDBValue, rhs: MMDBValue) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.bytes(let a), .bytes(let b)): return a == b
        case (.uint16(let a), .uint16(let b)): return a == b
        case (.uint32(let a), .uint32(let b)): return a == b
        case (.int32(let a), .int32(let b)): return a == b
        case (.uint64(let a), .uint64(let b)): return a == b
        case (.uint128(let ah, let al), .uint128(let bh, let bl)): return ah == bh && al == bl
        case (.array(let a), .array(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        case (.float(let a), .float(let b)): return a == b
        case (.map(let a), .map(let b)):
            guard a.count == b.count else { return false }
            for e in a {
                guard let other = b.first(where: { $0.key == e.key }), other.value == e.value else { return false }
            }
            return true
        default: return false
        }
    }

    /// A JSON-like rendering, for messages and debugging.
    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .double(let d): return "\(d)"
        case .float(let f): return "\(f)"
        case .bytes(let b): return "<" + b.map { String($0, radix: 16) }.joined(separator: " ") + ">"
        case .uint16(let v): return "\(v)"
        case .uint32(let v): return "\(v)"
        case .uint64(let v): return "\(v)"
        case .int32(let v): return "\(v)"
        case .uint128(let h, let l): return h == 0 ? "\(l)" : "0x" + String(h, radix: 16) + String(repeating: "0", count: 16 - String(l, radix: 16).count) + String(l, radix: 16)
        case .bool(let b): return b ? "true" : "false"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .map(let m): return "{" + m.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}
