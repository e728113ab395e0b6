/// A glob (SQLite GLOB semantics, see `Glob`) compiled for repeated matching: literal,
/// prefix (`secret/data/prod/*`) and match-all patterns take a fast path without
/// allocating; anything else falls back to `Glob.matches`.
public struct CompiledGlob: Sendable, Equatable {
    public let pattern: String
    enum Form: Sendable, Equatable { case all, literal(String), prefix(String), general }
    let form: Form

    public init(_ pattern: String) {
        self.pattern = pattern
        let specials: Set<Character> = ["*", "?", "["]
        if pattern == "*" { form = .all }
        else if !pattern.contains(where: { specials.contains($0) }) { form = .literal(pattern) }
        else if pattern.hasSuffix("*"), !pattern.dropLast().contains(where: { specials.contains($0) }) {
            form = .prefix(String(pattern.dropLast()))
        } else { form = .general }
    }

    @inline(__always)
    public func matches(_ text: String) -> Bool {
        switch form {
        case .all: return true
        case .literal(let l): return text == l
        case .prefix(let p): return Self.hasPrefix(text, p)
        case .general: return Glob.matches(pattern, text)
        }
    }

    /// `text.utf8.starts(with: prefix.utf8)`, over the bytes in place (iterating the UTF8Views
    /// costs several times more).
    @inline(__always)
    static func hasPrefix(_ text: String, _ prefix: String) -> Bool {
        let r = text.utf8.withContiguousStorageIfAvailable { t in
            prefix.utf8.withContiguousStorageIfAvailable { p in
                guard t.count >= p.count else { return false }
                for i in 0..<p.count where t[i] != p[i] { return false }
                return true
            }
        }
        if case .some(.some(let v)) = r { return v }
        return text.utf8.starts(with: prefix.utf8)
    }
}
