/// Glob matching with SQLite GLOB semantics: `*` any run, `?` one character, `[abc]`,
/// `[a-z]` and `[^abc]` classes; case-sensitive; everything else literal.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
        var pi = 0, ti = 0
        var starP = -1, starT = 0
        while ti < t.count {
            if pi < p.count {
                switch p[pi] {
                case "*":
                    starP = pi; starT = ti; pi += 1
                    continue
                case "?":
                    pi += 1; ti += 1
                    continue
                case "[":
                    if let (ok, next) = matchClass(p, pi, t[ti]) {
                        if ok { pi = next; ti += 1; continue }
                    } else if p[pi] == t[ti] {
                        pi += 1; ti += 1; continue
                    }
                default:
                    if p[pi] == t[ti] { pi += 1; ti += 1; continue }
                }
            }
            guard starP >= 0 else { return false }
            pi = starP + 1
            starT += 1
            ti = starT
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// (matched, index after the class), or nil when the class is unterminated.
    /// A `[...]` class at `start`, exactly as SQLite's GLOB reads it (func.c,
    /// patternCompare): a leading `^` negates; a `]` right after `[` (or `[^`) is a
    /// literal; `x-y` is a range when something other than a finished range precedes the
    /// `-` and `]` does not follow it; every character is first compared as a literal, so
    /// a range's start always matches even when the range is reversed (`[c-[]` matches
    /// `c`). Nil when the class is not terminated.
    static func matchClass(_ p: [Unicode.Scalar], _ start: Int, _ c: Unicode.Scalar) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.count && p[i] == "^" { negate = true; i += 1 }
        var seen = false
        var prior: Unicode.Scalar? = nil
        if i < p.count && p[i] == "]" {
            if c == "]" { seen = true }
            i += 1
        }
        while i < p.count && p[i] != "]" {
            if p[i] == "-", i + 1 < p.count, p[i + 1] != "]", let lo = prior {
                let hi = p[i + 1]
                if c >= lo && c <= hi { seen = true }
                prior = nil
                i += 2
            } else {
                if p[i] == c { seen = true }
                prior = p[i]
                i += 1
            }
        }
        guard i < p.count else { return nil }
        return (seen != negate, i + 1)
    }
}
