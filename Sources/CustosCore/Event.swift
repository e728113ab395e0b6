/// One access to a secret, or one identity event (login, token creation, policy change),
/// as Custos keeps it: schema `custos.event/v1`.
///
/// There is deliberately no field that could carry a secret's value: decoders read the
/// fields below and nothing else, and drop request and response bodies entirely.
public struct AccessEvent: Sendable, Equatable {
    public static let schema = "custos.event/v1"

    /// Deterministic id: the same access reported twice (two audit devices, a re-ingested
    /// file) gets the same id, which is how duplicates are recognised.
    public var id: String
    public var time: EventTime
    public var source: Source
    public var action: Action
    public var outcome: Outcome
    /// Why the outcome is what it is, classified (never the raw error text of the source).
    public var reason: String?
    public var secret: Secret?
    public var identity: Identity
    public var origin: Origin?
    public var requestID: String?
    public var pipeline: Pipeline?

    public init(id: String, time: EventTime, source: Source, action: Action, outcome: Outcome,
                reason: String? = nil, secret: Secret? = nil, identity: Identity,
                origin: Origin? = nil, requestID: String? = nil, pipeline: Pipeline? = nil) {
        self.id = id; self.time = time; self.source = source; self.action = action
        self.outcome = outcome; self.reason = reason; self.secret = secret
        self.identity = identity; self.origin = origin; self.requestID = requestID
        self.pipeline = pipeline
    }

    public struct Source: Sendable, Equatable {
        /// openbao, vault, ...
        public var kind: String
        /// Which server or account, as configured by the operator (default "default").
        public var instance: String
        public init(kind: String, instance: String) { self.kind = kind; self.instance = instance }
    }

    public struct Secret: Sendable, Equatable {
        /// The mount or store the secret lives in (e.g. `secret/`).
        public var store: String?
        public var path: String
        /// prod, staging, dev, ... (from policy, or inferred from the path).
        public var environment: String?
        /// Vault Enterprise / OpenBao namespace path (e.g. `team-a/`), absent for the root namespace.
        public var namespace: String?
        public init(store: String? = nil, path: String, environment: String? = nil, namespace: String? = nil) {
            self.store = store; self.path = path; self.environment = environment; self.namespace = namespace
        }
    }

    public struct Identity: Sendable, Equatable {
        /// Stable id (Vault entity id, or the HMAC of the token accessor). Absent when unauthenticated.
        public var id: String?
        public var name: String?
        public var kind: IdentityKind
        /// Auth method: token, userpass, approle, oidc, kubernetes, jwt, ...
        public var method: String?
        public var policies: [String]
        public init(id: String? = nil, name: String? = nil, kind: IdentityKind, method: String? = nil, policies: [String] = []) {
            self.id = id; self.name = name; self.kind = kind; self.method = method; self.policies = policies
        }
        public static let unauthenticated = Identity(kind: .unknown)
    }

    public struct Origin: Sendable, Equatable {
        public var ip: String
        public var port: Int?
        public init(ip: String, port: Int? = nil) { self.ip = ip; self.port = port }
    }

    /// The CI/CD run an access happened in. Everything is optional: each way in (`custos ci
    /// report`, a GitHub Actions OIDC token, a CI audit log) knows a different part.
    public struct Pipeline: Sendable, Equatable {
        /// github, gitlab, ...
        public var provider: String?
        /// The repository or project (`octo-org/octo-repo`, `group/project`).
        public var repository: String?
        /// The workflow or pipeline definition's name (`deploy`).
        public var name: String?
        /// The pipeline definition's id (GitHub `workflow_ref`/`job_workflow_ref`, GitLab pipeline id).
        public var id: String?
        public var runID: String?
        /// 1 for the first try of a run; re-runs count up.
        public var attempt: Int?
        public var job: String?
        public var step: String?
        /// The deployment environment the run targets (`prod`), when the provider says.
        public var environment: String?
        public var trigger: Trigger?
        public var triggerIdentity: String?
        public var runnerIP: String?
        /// The secrets the pipeline is allowed (as the run or the policy states them).
        public var scope: [String]
        public init(provider: String? = nil, repository: String? = nil, name: String? = nil, id: String? = nil,
                    runID: String? = nil, attempt: Int? = nil, job: String? = nil,
                    step: String? = nil, environment: String? = nil, trigger: Trigger? = nil, triggerIdentity: String? = nil,
                    runnerIP: String? = nil, scope: [String] = []) {
            self.provider = provider; self.repository = repository; self.name = name; self.id = id
            self.runID = runID; self.attempt = attempt; self.job = job; self.step = step; self.environment = environment
            self.trigger = trigger; self.triggerIdentity = triggerIdentity; self.runnerIP = runnerIP; self.scope = scope
        }
        public enum Trigger: String, Sendable, CaseIterable { case manual, automated }
    }
}

public enum Outcome: String, Sendable, CaseIterable { case success, denied, error }

public enum IdentityKind: String, Sendable, CaseIterable {
    case human, service, api_key, root, pipeline, unknown
}

/// What was done. Open set: decoders of later sources add their own values.
public struct Action: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ raw: String) { self.rawValue = raw }
    public var description: String { rawValue }

    public static let read = Action("read")
    public static let list = Action("list")
    public static let write = Action("write")
    public static let delete = Action("delete")
    public static let login = Action("login")
    public static let tokenCreate = Action("token_create")
    public static let tokenRevoke = Action("token_revoke")
    public static let policyChange = Action("policy_change")
    public static let authChange = Action("auth_change")
    public static let auditChange = Action("audit_change")
    public static let admin = Action("admin")
    /// A pipeline run reports it used the secret (`custos ci report`): the run's own account,
    /// next to the store's record of the read.
    public static let use = Action("use")
    /// The secret's value was found in a build log (`custos scan-log --report`).
    public static let leak = Action("leak")
}
