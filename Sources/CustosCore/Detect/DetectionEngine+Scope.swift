/// The scope test of `out_of_scope`, shared by `process` and by callers that only want to
/// know whether an access was allowed by the policy's scope rules (`custos blast-radius`).
extension DetectionEngine {
    /// Actions `out_of_scope` looks at: reading, listing, writing or deleting a secret.
    @inline(__always) static func isSecretAccess(_ a: Action) -> Bool {
        a == .read || a == .list || a == .write || a == .delete || a == .use
    }

    /// The index of the first identity rule whose glob matches the name or the id, or -1.
    @inline(__always) func firstRule(name: String?, id: String?) -> Int32 {
        for (i, rule) in rules.enumerated() {
            if (name.map(rule.glob.matches) ?? false) || (id.map(rule.glob.matches) ?? false) { return Int32(i) }
        }
        return -1
    }

    /// True when the rule restricts scope and no scope glob matches `path`.
    @inline(__always) static func outsideScope(_ rule: Rule, _ path: String) -> Bool {
        if rule.scope.isEmpty { return false }
        for g in rule.scope where g.matches(path) { return false }
        return true
    }

    /// What the policy's scope rules say about one event.
    public struct ScopeVerdict: Sendable, Equatable {
        /// The `match` glob of the identity rule that applies.
        public var rule: String
        /// That rule's scope globs.
        public var scope: [String]
        /// True when the access is outside the scope (what `out_of_scope` alerts on).
        public var outside: Bool
    }

    /// The verdict for `e`, or nil when no scope applies: the event is not a read, list,
    /// write or delete of a secret, no identity rule matches, or the matching rule has no
    /// scope. Exactly the test `process` makes for `out_of_scope`; no state is changed.
    public func scopeVerdict(_ e: AccessEvent) -> ScopeVerdict? {
        guard Self.isSecretAccess(e.action), let path = e.secret?.path else { return nil }
        let i = firstRule(name: e.identity.name, id: e.identity.id)
        guard i >= 0 else { return nil }
        let rule = rules[Int(i)]
        guard !rule.scope.isEmpty else { return nil }
        return ScopeVerdict(rule: rule.rule.match, scope: rule.rule.scope, outside: Self.outsideScope(rule, path))
    }
}
