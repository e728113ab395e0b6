/// Field checks shared by the Azure Key Vault, Kubernetes and SaaS vault decoders: names
/// taken from a record become path segments, ignore reasons or identity names only after
/// these checks, so that a record can neither forge a path (`..`, `/`, `*`) nor carry
/// unbounded or control text into an event.
public enum SourceFields {
    /// A non-empty string of at most `max` bytes without control characters; longer or
    /// odd values are dropped, not cut.
    public static func bounded(_ v: JSONNode?, max: Int = 512) -> String? {
        guard let s = v?.text, s.utf8.count <= max, !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        return s
    }

    /// One path segment: 1–`max` bytes, no `/`, no `*` (the wildcard segment Custos writes
    /// itself), no control characters, not `.` or `..`.
    public static func isSegment(_ s: String, max: Int = 256) -> Bool {
        guard !s.isEmpty, s.utf8.count <= max, s != ".", s != ".." else { return false }
        return !s.utf8.contains { $0 < 0x20 || $0 == 0x7F || $0 == 0x2F || $0 == 0x2A }
    }

    /// `s` when it is a path segment.
    public static func segment(_ v: JSONNode?, max: Int = 256) -> String? {
        guard let s = v?.text, isSegment(s, max: max) else { return nil }
        return s
    }

    /// A name for an ignore reason (an operation or event type): `[A-Za-z0-9_.:-]`, at most
    /// 64 bytes, else a generic text. Ignore reasons never quote arbitrary input.
    public static func reasonName(_ s: String?) -> String {
        guard let s, !s.isEmpty, s.utf8.count <= 64,
              s.utf8.allSatisfy({ SourceText.isSlug($0) || $0 == 0x3A }) else { return "unrecognised name" }
        return s
    }

    /// An HTTP status code given as a number or a string of digits.
    public static func status(_ v: JSONNode?) -> Int? {
        guard let n = v?.intValue, n >= 100, n <= 999 else { return nil }
        return n
    }

    /// Outcome and reason of an HTTP status: 401/403 denied, other ≥ 400 errors.
    public static func outcome(httpStatus code: Int) -> (Outcome, String?) {
        switch code {
        case 401: return (.denied, "unauthorized")
        case 403: return (.denied, "forbidden")
        case 404: return (.error, "not found")
        case 409: return (.error, "conflict")
        case 429: return (.error, "rate limited")
        case 400..<500: return (.error, "client error \(code)")
        case 500...: return (.error, "server error \(code)")
        default: return (.success, nil)
        }
    }
}
