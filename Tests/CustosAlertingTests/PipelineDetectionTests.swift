import CustosAlerting
@testable import CustosCore
import Foundation
import Testing

/// The pipeline classes: `pipeline_out_of_scope`, `runner_unknown_ip`, `manual_prod_trigger`
/// and `leaked_secret`, on real OpenBao records given a pipeline context (as the decoder
/// gives one from a jwt token's CI claims, or `custos ci report` states it).
@Suite struct PipelineDetectionTests {
    static let classes = Scenario.allClasses + """

          pipeline_out_of_scope: { action: alert, severity: high, owner: sec, sla: 1h, playbook: PB-SEC-07 }
          runner_unknown_ip:     { action: alert, severity: high, owner: sec, sla: 1h }
          manual_prod_trigger:   { action: alert, severity: medium, owner: lead, sla: 4h }
          leaked_secret:         { action: alert, severity: critical, owner: sec, sla: 30m, playbook: PB-SEC-06 }
        """
    static let pipelines = """
        pipelines:
          runner_networks: [runners]
          manual_triggers: [alice, "release-*"]
          scopes:
            - { repository: octo-org/payments, workflow: deploy, environment: prod, secrets: ["secret/data/prod/payments/*"] }
            - { repository: octo-org/payments, secrets: ["secret/data/payments/*"] }
            - { provider: gitlab, repository: "octo-org/*", secrets: ["secret/data/dev/*"], runner_networks: [hosted] }
        """

    static func policy(pipelines: String = Self.pipelines, classes: String = Self.classes) throws -> LoadedPolicy {
        let owners = Scenario.owners.replacingOccurrences(of: "  vpn: [198.51.100.0/26]\n",
                                                          with: "  vpn: [198.51.100.0/26]\n  runners: [10.42.8.0/21]\n  hosted: [192.0.2.0/24]\n")
        return try PolicyLoader.load(yaml: owners + "\n" + classes + "\n" + pipelines, baseDirectory: AlertingFixtures.path)
    }

    /// The approle read of the fixture as a GitHub Actions run of octo-org/payments.
    static func run(_ time: String, path: String, workflow: String = "ci", environment: String? = nil,
                    trigger: AccessEvent.Pipeline.Trigger = .automated, by: String? = "octocat", runner: String? = "10.42.9.5",
                    provider: String = "github", repository: String = "octo-org/payments", runID: String = "1001",
                    outcome: Outcome? = nil, action: Action? = nil, scope: [String] = []) -> AccessEvent {
        var e = Records.at(Records.serviceRead, time, ip: runner ?? "198.18.0.9", name: "jwt-\(repository)", path: path,
                           outcome: outcome, action: action)
        e.identity.kind = .pipeline
        e.pipeline = .init(provider: provider, repository: repository, name: workflow,
                           id: "\(repository)/.github/workflows/\(workflow).yml@refs/heads/main", runID: runID, attempt: 1,
                           job: "build", environment: environment, trigger: trigger, triggerIdentity: by, runnerIP: runner, scope: scope)
        return e
    }

    // MARK: pipeline_out_of_scope

    @Test func aRunOutsideItsScopeAlertsWithTheRunInTheDetails() throws {
        let p = try Self.policy()
        let alerts = Scenario.run(p, [
            Self.run("2026-11-30T10:00:00Z", path: "secret/data/payments/stripe"),   // in scope (entry 2)
            Self.run("2026-11-30T10:01:00Z", path: "secret/data/prod/payments/db"),  // ci is not deploy/prod
        ])
        let oos = Scenario.raised(alerts, .pipeline_out_of_scope)
        #expect(oos.count == 1)
        let a = try #require(oos.first)
        #expect(a.secret?.path == "secret/data/prod/payments/db" && a.severity == .high && a.playbook == "PB-SEC-07")
        #expect(a.summary.contains("octo-org/payments ci run 1001") && a.summary.contains("outside its scope secret/data/payments/*"), "\(a.summary)")
        #expect(a.details["repository"] == "octo-org/payments" && a.details["run_id"] == "1001" && a.details["workflow"] == "ci")
        #expect(a.details["runner_ip"] == "10.42.9.5" && a.details["scope"] == "secret/data/payments/*")
        #expect(a.identity.kind == .pipeline)
        // Only pipeline classes: no other class applies to a pipeline with no identity rules.
        #expect(Set(alerts.map(\.alertClass)) == [.pipeline_out_of_scope])
    }

    @Test func theDeployWorkflowInProdMayReadProdSecrets() throws {
        let p = try Self.policy()
        let ok = Self.run("2026-11-30T10:00:00Z", path: "secret/data/prod/payments/db", workflow: "deploy", environment: "prod")
        #expect(Scenario.run(p, [ok]).isEmpty)
        // The same workflow without the prod environment: only entry 2 matches.
        let noEnv = Self.run("2026-11-30T10:00:00Z", path: "secret/data/prod/payments/db", workflow: "deploy")
        #expect(Scenario.raised(Scenario.run(p, [noEnv]), .pipeline_out_of_scope).count == 1)
        // The workflow glob also matches the definition id (job_workflow_ref).
        var byRef = ok
        byRef.pipeline?.name = nil
        let q = try Self.policy(pipelines: Self.pipelines.replacingOccurrences(of: "workflow: deploy,", with: "workflow: \"*/deploy.yml@*\","))
        #expect(Scenario.run(q, [byRef]).isEmpty)
    }

    @Test func theScopeIsListedOnceWhenEntriesRepeatAGlob() throws {
        let p = try Self.policy(pipelines: Self.pipelines + "\n    - { repository: \"octo-org/*\", secrets: [\"secret/data/payments/*\", \"secret/data/shared/*\"] }")
        let a = try #require(Scenario.raised(Scenario.run(p, [Self.run("2026-11-30T10:00:00Z", path: "secret/data/prod/x")]), .pipeline_out_of_scope).first)
        #expect(a.details["scope"] == "secret/data/payments/*,secret/data/shared/*", "\(a.details)")
    }

    @Test func aDeniedAttemptOutsideTheScopeAlertsToo() throws {
        let p = try Self.policy()
        let denied = Self.run("2026-11-30T10:00:00Z", path: "secret/data/prod/ledger/db", outcome: .denied)
        let a = try #require(Scenario.raised(Scenario.run(p, [denied]), .pipeline_out_of_scope).first)
        #expect(a.outcome == .denied && a.summary.contains("(denied)"))
    }

    @Test func aRepositoryNoEntryCoversSaysSo() throws {
        let p = try Self.policy()
        let other = Self.run("2026-11-30T10:00:00Z", path: "secret/data/payments/stripe", repository: "octo-org/web")
        let a = try #require(Scenario.raised(Scenario.run(p, [other]), .pipeline_out_of_scope).first)
        #expect(a.summary.contains("no pipelines.scopes entry covers this repository and workflow"), "\(a.summary)")
    }

    @Test func withoutPolicyScopesTheRunsOwnStatedScopeApplies() throws {
        let p = try Self.policy(pipelines: "pipelines: { runner_networks: [runners] }")
        let stated = ["secret/data/dev/*"]
        let alerts = Scenario.run(p, [
            Self.run("2026-11-30T10:00:00Z", path: "secret/data/dev/app", scope: stated),
            Self.run("2026-11-30T10:01:00Z", path: "secret/data/prod/payments/db", scope: stated),
            Self.run("2026-11-30T10:02:00Z", path: "secret/data/prod/payments/db"),   // no scope stated, none in the policy
        ])
        let oos = Scenario.raised(alerts, .pipeline_out_of_scope)
        #expect(oos.count == 1 && oos.first?.details["scope"] == "secret/data/dev/*")
    }

    @Test func repeatedOutOfScopeUseInOneWorkflowFolds() throws {
        let p = try Self.policy()
        let events = (0..<4).map { Self.run("2026-11-30T10:0\($0):00Z", path: "secret/data/prod/payments/db", runID: "10\($0)") }
        let alerts = Scenario.run(p, events).filter { $0.alertClass == .pipeline_out_of_scope }
        #expect(alerts.filter { $0.status == .raised }.count == 1)
        #expect(alerts.first { $0.status == .updated }?.count == 4)
    }

    // MARK: runner_unknown_ip

    @Test func aRunnerOutsideTheRunnerNetworksAlerts() throws {
        let p = try Self.policy()
        let alerts = Scenario.run(p, [
            Self.run("2026-11-30T10:00:00Z", path: "secret/data/payments/stripe"),                         // 10.42.9.5: a runner
            Self.run("2026-11-30T10:01:00Z", path: "secret/data/payments/stripe", runner: "203.0.113.50"), // not a runner
        ])
        let r = Scenario.raised(alerts, .runner_unknown_ip)
        #expect(r.count == 1)
        #expect(r.first?.summary.contains("ran on 203.0.113.50, outside the runner networks") == true, "\(r.first?.summary ?? "")")
        #expect(Set(alerts.map(\.alertClass)) == [.runner_unknown_ip])
    }

    @Test func withoutARunnerAddressTheRequestsAddressIsChecked() throws {
        let p = try Self.policy()
        var e = Self.run("2026-11-30T10:00:00Z", path: "secret/data/payments/stripe", runner: nil)
        e.origin = .init(ip: "198.18.0.9")
        #expect(Scenario.raised(Scenario.run(p, [e]), .runner_unknown_ip).count == 1)
        e.origin = .init(ip: "10.42.15.254")
        #expect(Scenario.run(p, [e]).isEmpty)
    }

    @Test func aScopeEntrysOwnRunnerNetworksReplaceTheGlobalOnes() throws {
        let p = try Self.policy()
        // GitLab runs of octo-org/* run on the hosted network (192.0.2.0/24), not on runners.
        let hosted = Self.run("2026-11-30T10:00:00Z", path: "secret/data/dev/app", runner: "192.0.2.10", provider: "gitlab", repository: "octo-org/web")
        #expect(Scenario.run(p, [hosted]).isEmpty)
        let onRunners = Self.run("2026-11-30T10:00:00Z", path: "secret/data/dev/app", runner: "10.42.9.5", provider: "gitlab", repository: "octo-org/web")
        #expect(Scenario.raised(Scenario.run(p, [onRunners]), .runner_unknown_ip).count == 1)
    }

    @Test func withoutRunnerNetworksRunnersAreNotChecked() throws {
        let p = try Self.policy(pipelines: "pipelines: { manual_triggers: [alice] }")
        #expect(Scenario.run(p, [Self.run("2026-11-30T10:00:00Z", path: "secret/data/x", runner: "198.18.0.9")]).isEmpty)
    }

    // MARK: manual_prod_trigger

    @Test func aManualProductionRunBySomeoneNotAllowedAlerts() throws {
        let p = try Self.policy()
        func deploy(_ by: String?, _ trigger: AccessEvent.Pipeline.Trigger = .manual, env: String = "prod", run: String) -> AccessEvent {
            Self.run("2026-11-30T10:00:00Z", path: "secret/data/prod/payments/db", workflow: "deploy", environment: env,
                     trigger: trigger, by: by, runID: run)
        }
        let alerts = Scenario.run(p, [
            deploy("alice", run: "1"),            // allowed
            deploy("release-bot", run: "2"),      // allowed by glob
            deploy("mallory", .automated, run: "3"),   // not by hand
            deploy("mallory", run: "4"),          // alerts
            deploy(nil, run: "5"),                // unknown person: alerts
        ])
        let m = Scenario.raised(alerts, .manual_prod_trigger)
        #expect(m.count == 2)
        #expect(m.first?.summary.hasPrefix("mallory started the prod pipeline octo-org/payments deploy run 4") == true, "\(m.first?.summary ?? "")")
        #expect(m.last?.summary.hasPrefix("an unknown identity started") == true)
        #expect(m.first?.details["trigger_identity"] == "mallory" && m.first?.details["trigger"] == "manual")
        #expect(m.allSatisfy { $0.owner?.key == "lead" && $0.severity == .medium })
        #expect(Set(alerts.map(\.alertClass)) == [.manual_prod_trigger])
    }

    @Test func aManualRunOutsideProductionDoesNotAlert() throws {
        let p = try Self.policy()
        let staging = Self.run("2026-11-30T10:00:00Z", path: "secret/data/payments/x", environment: "staging", trigger: .manual, by: "mallory")
        #expect(Scenario.run(p, [staging]).isEmpty)
    }

    @Test func withoutARunEnvironmentTheSecretsEnvironmentDecides() throws {
        // The secret rule makes secret/data/prod/* production; the run names no environment.
        let classes = Self.classes + "\nsecrets:\n  - { match: \"secret/data/prod/*\", environment: prod }\n"
        let p = try Self.policy(pipelines: "pipelines: { manual_triggers: [alice] }", classes: classes)
        let e = Self.run("2026-11-30T10:00:00Z", path: "secret/data/prod/payments/db", trigger: .manual, by: "mallory")
        #expect(Scenario.raised(Scenario.run(p, [e]), .manual_prod_trigger).count == 1)
        let dev = Self.run("2026-11-30T10:00:00Z", path: "secret/data/dev/app", trigger: .manual, by: "mallory")
        #expect(Scenario.run(p, [dev]).isEmpty)
    }

    // MARK: leaked_secret

    static func leak(_ time: String, path: String, variant: String, runID: String = "1001") -> AccessEvent {
        var e = AccessEvent(id: "leak-\(runID)-\(path)-\(variant)", time: EventTime(rfc3339: time)!,
                            source: .init(kind: "custos", instance: "scan-log"), action: .leak, outcome: .success,
                            reason: variant, secret: .init(path: path),
                            identity: .init(id: "github:octo-org/payments", name: "github:octo-org/payments", kind: .pipeline))
        e.pipeline = .init(provider: "github", repository: "octo-org/payments", name: "deploy", runID: runID, attempt: 2, job: "build")
        return e
    }

    @Test func aLeakReportAlertsThatTheSecretMustBeRotated() throws {
        let p = try Self.policy()
        let alerts = Scenario.run(p, [Self.leak("2026-11-30T10:00:00Z", path: "secret/data/prod/payments/db", variant: "base64+truncated at 212:18")])
        let a = try #require(Scenario.raised(alerts, .leaked_secret).first)
        #expect(a.severity == .critical && a.playbook == "PB-SEC-06" && a.owner?.key == "sec")
        #expect(a.summary.contains("secret/data/prod/payments/db was found in the build log of octo-org/payments deploy run 1001 attempt 2 job build"), "\(a.summary)")
        #expect(a.summary.contains("rotate it now"))
        #expect(a.details["variant"] == "base64+truncated at 212:18")
        // A leak report is not an access: no scope, runner or manual-trigger alert comes of it.
        #expect(Set(alerts.map(\.alertClass)) == [.leaked_secret])
    }

    @Test func leaksOfOneSecretInOneRunFoldAndOtherRunsAreNewAlerts() throws {
        let p = try Self.policy()
        let alerts = Scenario.run(p, [
            Self.leak("2026-11-30T10:00:00Z", path: "secret/data/prod/payments/db", variant: "raw at 10:1"),
            Self.leak("2026-11-30T10:00:01Z", path: "secret/data/prod/payments/db", variant: "base64 at 11:1"),
            Self.leak("2026-11-30T10:00:02Z", path: "secret/data/payments/stripe", variant: "raw at 12:1"),
            Self.leak("2026-11-30T10:05:00Z", path: "secret/data/prod/payments/db", variant: "raw at 10:1", runID: "1002"),
        ])
        #expect(Scenario.raised(alerts, .leaked_secret).count == 3)
    }

    @Test func aClassSetToLogIsCountedNotRaised() throws {
        let classes = Self.classes.replacingOccurrences(of: "leaked_secret:         { action: alert, severity: critical, owner: sec, sla: 30m, playbook: PB-SEC-06 }",
                                                        with: "leaked_secret: { action: log }")
        let p = try Self.policy(classes: classes)
        var engine = DetectionEngine(policy: p.policy, geo: p.locator)
        var out: [Alert] = []
        engine.process(Self.leak("2026-11-30T10:00:00Z", path: "secret/data/x", variant: "raw"), index: 0, now: Scenario.now, into: &out)
        #expect(out.isEmpty)
        #expect(engine.logged[.leaked_secret] == 1)
    }

    @Test func eventsWithoutAPipelineNeverTripPipelineClasses() throws {
        let p = try Self.policy()
        let alerts = Scenario.run(p, [Records.at(Records.serviceRead, "2026-11-30T10:00:00Z", ip: "198.18.0.9", path: "secret/data/prod/x")])
        #expect(alerts.isEmpty)
    }
}
