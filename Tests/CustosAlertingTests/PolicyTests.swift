import CustosAlerting
import CustosCore
import Foundation
import Testing

enum AlertingFixtures {
    static var root: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }
    static var path: String { root.path }
}

@Suite struct PolicyTests {
    static let good = """
        networks:
          office: [203.0.113.0/24, "2001:db8:10::/48"]
          vpn: [198.51.100.0/26]
          runners: [10.42.8.0/21]
          hosted: [192.0.2.0/24]
        geoip: { database: GeoIP2-City-Test.mmdb, countries: [GB, US] }
        schedules:
          business: { timezone: Europe/London, days: [mon, tue, wed, thu, fri], hours: "08:00-19:00" }
        owners:
          devops-oncall: { name: DevOps on-call, notify: [ { webhook: "http://127.0.0.1:9001/hook" } ] }
          security:      { name: Security team,  notify: [ { slack: "https://hooks.slack.example/services/T0/B0/SECRETPART" } ] }
          secops-lead:   { name: CISO,           notify: [ { pagerduty: { routing_key: "abc" } }, { email: "secops@example.com" } ] }
        smtp: { host: 127.0.0.1, port: 2525, from: custos@example.com }
        identities:
          - { match: "token-payment-processor-pod*", kind: service, scope: ["secret/data/payments/*"], networks: [office, vpn], schedule: always }
          - { match: "root", break_glass: true }
          - { match: "*", networks: [office, vpn], schedule: business }
        secrets:
          - { match: "secret/data/prod/*", environment: prod }
        pipelines:
          runner_networks: [runners]
          manual_triggers: [alice, "release-*"]
          scopes:
            - { repository: octo-org/payments, workflow: deploy, environment: prod, secrets: ["secret/data/prod/payments/*"] }
            - { provider: gitlab, repository: "octo-org/*", secrets: ["secret/data/dev/*"], runner_networks: [hosted, runners] }
        classes:
          access_known_ip:   { action: log }
          failed_single:     { action: log }
          failed_threshold:  { action: alert, severity: high,     owner: devops-oncall, sla: 1h,  playbook: PB-SEC-01, count: 3, window: 5m }
          out_of_scope:      { action: alert, severity: critical, owner: security,      sla: 30m, playbook: PB-SEC-02 }
          impossible_travel: { action: alert, severity: high,     owner: security,      sla: 30m, playbook: PB-SEC-03, speed_kmh: 900, min_km: 500 }
          break_glass:       { action: alert, severity: critical, owner: secops-lead,   sla: 15m, playbook: PB-SEC-04 }
          volume_anomaly:    { action: alert, severity: medium,   owner: security,      sla: 4h,  playbook: PB-SEC-05 }
          unknown_ip:        { action: alert, severity: high,     owner: security,      sla: 1h }
          off_hours:         { action: alert, severity: medium,   owner: security,      sla: 4h }
          pipeline_out_of_scope: { action: alert, severity: high,   owner: security,      sla: 1h,  playbook: PB-SEC-07 }
          runner_unknown_ip:     { action: alert, severity: high,   owner: devops-oncall, sla: 1h }
          manual_prod_trigger:   { action: alert, severity: medium, owner: secops-lead,   sla: 4h }
          leaked_secret:         { action: alert, severity: critical, owner: security,    sla: 30m, playbook: PB-SEC-06 }
        """

    @Test func theIssuesExampleLoadsWithEverySetting() throws {
        let loaded = try PolicyLoader.load(yaml: Self.good, baseDirectory: AlertingFixtures.path)
        let p = loaded.policy
        #expect(p.networks["office"]?.count == 2)
        #expect(p.geoip?.countries == ["GB", "US"])
        #expect(loaded.geoDatabase != nil)
        let business = try #require(p.schedules["business"])
        #expect(business.timeZone.identifier == "Europe/London")
        #expect(business.days == [1, 2, 3, 4, 5])
        #expect(business.start == 480 && business.end == 1140)
        #expect(p.owners["secops-lead"]?.notify == [.pagerduty(routingKey: "abc", url: "https://events.pagerduty.com/v2/enqueue"), .email(to: "secops@example.com")])
        #expect(p.identities.map(\.match) == ["token-payment-processor-pod*", "root", "*"])
        #expect(p.identities[0].kind == .service && p.identities[0].scope == ["secret/data/payments/*"])
        #expect(p.identities[1].breakGlass)
        let ft = p.settings(.failed_threshold)
        #expect(ft.alert && ft.severity == .high && ft.owner == "devops-oncall" && ft.sla == 3600 && ft.count == 3 && ft.window == 300)
        #expect(ft.playbook == "PB-SEC-01")
        #expect(p.settings(.impossible_travel).speedKmh == 900 && p.settings(.impossible_travel).minKm == 500)
        #expect(p.settings(.break_glass).sla == 900)
        #expect(!p.settings(.access_known_ip).alert)
        #expect(p.pipelines.runnerNetworks == ["runners"])
        #expect(p.pipelines.production == ["prod", "production"])   // the default
        #expect(p.pipelines.manualTriggers == ["alice", "release-*"])
        #expect(p.pipelines.scopes == [
            .init(repository: "octo-org/payments", workflow: "deploy", environment: "prod", secrets: ["secret/data/prod/payments/*"]),
            .init(provider: "gitlab", repository: "octo-org/*", secrets: ["secret/data/dev/*"], runnerNetworks: ["hosted", "runners"]),
        ])
        #expect(p.settings(.leaked_secret).severity == .critical && p.settings(.leaked_secret).playbook == "PB-SEC-06")
        #expect(p.warnings.isEmpty, "\(p.warnings)")
    }

    @Test func theExampleShippedInTheRepositoryLoads() throws {
        // examples/policy.yaml is what the README points new users to.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/policy.yaml")
        let loaded = try PolicyLoader.load(path: url.path)
        #expect(loaded.policy.classes.count == AlertClass.allCases.count)
        #expect(loaded.geoDatabase != nil)
        #expect(loaded.policy.warnings.isEmpty, "\(loaded.policy.warnings)")
        #expect(!loaded.policy.pipelines.scopes.isEmpty && !loaded.policy.pipelines.runnerNetworks.isEmpty)
    }

    func problems(_ yaml: String) -> [ConfigProblem] {
        do {
            _ = try PolicyLoader.load(yaml: yaml, baseDirectory: AlertingFixtures.path)
            return []
        } catch {
            return error.problems
        }
    }

    @Test func everyProblemIsListedByKeyPath() {
        let bad = """
            networks:
              office: [203.0.113.0/33, not-an-ip]
            schedules:
              business: { timezone: Mars/Olympus, days: [mon, funday], hours: "8-19" }
            owners:
              mute: { name: Nobody }
              security: { notify: [ { slack: "not a url" } ] }
            identities:
              - { match: "*", networks: [office, home], schedule: nightly, kind: robot }
            classes:
              break_glass:      { action: alert, severity: critical, sla: 15m }
              out_of_scope:     { action: alert, severity: catastrophic, owner: nobody, sla: 30m }
              unknown_ip:       { action: alert, owner: mute, sla: 1h }
              off_hours:        { action: alert, owner: security }
              failed_single:    { action: alert, owner: security, sla: 1h }
              failed_threshold: { action: alert, owner: security, sla: 1h, count: 1, window: 5, speed_kmh: 3 }
              exfiltration:     { action: alert }
            sirens: true
            """
        let ps = problems(bad)
        let paths = Set(ps.map(\.path))
        for expected in ["networks.office[0]", "networks.office[1]", "schedules.business.timezone", "schedules.business.days[1]",
                         "schedules.business.hours", "owners.mute.notify", "owners.security.notify[0].slack",
                         "identities[0].networks[1]", "identities[0].schedule", "identities[0].kind",
                         "classes.break_glass.owner", "classes.out_of_scope.severity", "classes.out_of_scope.owner",
                         "classes.unknown_ip.owner", "classes.off_hours.sla", "classes.failed_single.action",
                         "classes.failed_threshold.count", "classes.failed_threshold.window", "classes.failed_threshold.speed_kmh",
                         "classes.exfiltration", "sirens"] {
            #expect(paths.contains(expected), "missing a problem at \(expected); got \(ps.map(\.description))")
        }
        // Positions point into the file.
        let tz = ps.first { $0.path == "schedules.business.timezone" }
        #expect(tz?.position.line == 4)
        #expect(ps.first { $0.path == "sirens" }?.message.contains("unknown key") == true)
        #expect(ps.first { $0.path == "classes.break_glass.owner" }?.message.contains("silent failure") == true)
        // The Slack URL is a credential: never echoed.
        #expect(!ps.map(\.description).joined().contains("not a url"))
    }

    @Test func pipelineProblemsAreListedByKeyPath() {
        let bad = """
            networks:
              runners: [10.42.8.0/21]
            pipelines:
              runner_networks: [runners, cloud]
              production: []
              manual_triggers: [alice, [bob]]
              scopes:
                - { workflow: deploy, secrets: ["secret/data/prod/*"] }
                - { repository: octo-org/payments, secrets: [] }
                - { repository: octo-org/web, secrets: ["secret/data/dev/*"], runner_networks: [nowhere], branch: main }
              approvers: [bob]
            """
        let ps = problems(bad)
        let paths = Set(ps.map(\.path))
        for expected in ["pipelines.runner_networks[1]", "pipelines.production", "pipelines.manual_triggers[1]",
                         "pipelines.scopes[0].repository", "pipelines.scopes[1].secrets",
                         "pipelines.scopes[2].runner_networks[0]", "pipelines.scopes[2].branch", "pipelines.approvers"] {
            #expect(paths.contains(expected), "missing a problem at \(expected); got \(ps.map(\.description))")
        }
        #expect(ps.first { $0.path == "pipelines.runner_networks[1]" }?.message.contains("\"cloud\" is not one of the networks") == true)
        #expect(ps.first { $0.path == "pipelines.scopes[1].secrets" }?.message.contains("list the secrets") == true)
    }

    @Test func pipelineWarningsSayWhatNeverApplies() throws {
        let yaml = """
            identities:
              - { match: "*" }
            classes:
              pipeline_out_of_scope: { action: log }
            """
        let w = try PolicyLoader.load(yaml: yaml, baseDirectory: AlertingFixtures.path).policy.warnings
        #expect(w.contains("pipelines.scopes: none, so pipeline_out_of_scope applies only to runs that report their own scope"))
        #expect(w.contains("pipelines.runner_networks: none, so runner_unknown_ip never applies"))
        #expect(w.contains { $0.hasPrefix("classes.leaked_secret: not configured") })
    }

    @Test func alertingClassWithoutOwnerIsRefused() {
        let ps = problems("""
            owners: { sec: { notify: [ { webhook: "http://127.0.0.1:1/x" } ] } }
            classes: { break_glass: { action: alert, severity: critical, sla: 15m } }
            """)
        #expect(ps.map(\.path) == ["classes.break_glass.owner"])
    }

    @Test func ownerWithoutTargetIsRefusedEvenIfUnused() {
        let ps = problems("owners: { sec: { name: Security, notify: [] } }")
        #expect(ps.map(\.path) == ["owners.sec.notify"])
    }

    @Test func emailNeedsSMTP() {
        let ps = problems("""
            owners: { sec: { notify: [ { email: "sec@example.com" } ] } }
            """)
        #expect(ps.map(\.path) == ["smtp"])
    }

    @Test func missingGeoIPDatabaseIsAProblem() {
        let ps = problems("geoip: { database: nowhere.mmdb, countries: [GB] }")
        #expect(ps.map(\.path) == ["geoip.database"])
        #expect(ps.first?.message.contains("nowhere.mmdb") == true)
    }

    @Test func brokenGeoIPDatabaseIsAProblemNotACrash() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-geo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("not a database".utf8).write(to: dir.appendingPathComponent("x.mmdb"))
        do {
            _ = try PolicyLoader.load(yaml: "geoip: { database: x.mmdb }", baseDirectory: dir.path)
            Issue.record("a broken database loaded")
        } catch {
            #expect(error.problems.first?.path == "geoip.database")
        }
    }

    @Test func invalidYAMLSaysSo() {
        let ps = problems("owners: [unclosed")
        #expect(ps.count == 1)
        #expect(ps.first?.message.hasPrefix("not valid YAML") == true)
        #expect(problems("- just\n- a list").first?.message.contains("top level") == true)
        #expect(problems("").isEmpty)   // an empty policy: nothing alerts (warnings say so)
    }

    @Test func duplicateKeysAreProblems() {
        let ps = problems("networks: { a: [10.0.0.0/8] }\nnetworks: { b: [10.0.0.0/8] }")
        #expect(ps.map(\.message) == ["duplicate key networks"])
        #expect(ps.first?.position.line == 1)
        // Parser errors never quote the file (it holds routing keys and webhook URLs).
        let syntax = problems("owners: { sec: { notify: [ { pagerduty: { routing_key: SECRETKEY123 } } ] }\n  bad: [")
        #expect(syntax.count == 1 && !syntax[0].description.contains("SECRETKEY123"))
    }

    @Test func warningsNameClassesThatOnlyLog() throws {
        let p = try PolicyLoader.load(yaml: "classes: { break_glass: { action: log } }", baseDirectory: "/").policy
        #expect(p.warnings.contains { $0.hasPrefix("classes.break_glass: action is log") })
        #expect(p.warnings.contains { $0.hasPrefix("classes.off_hours: not configured") })
    }

    @Test func durations() {
        #expect(ConfigDuration.parse("90s") == 90)
        #expect(ConfigDuration.parse("5m") == 300)
        #expect(ConfigDuration.parse("1h30m") == 5400)
        #expect(ConfigDuration.parse("2w") == 1_209_600)
        for bad in ["", "5", "m", "5x", "-5m", "1.5h", "99999999999999h", "5m5"] { #expect(ConfigDuration.parse(bad) == nil, "\(bad)") }
        #expect(ConfigDuration.format(5400) == "1h30m")
    }

    @Test func schedules() throws {
        let london = TimeZone(identifier: "Europe/London")!
        let s = Schedule(name: "b", timeZone: london, days: [1, 2, 3, 4, 5], start: 480, end: 1140)
        #expect(s.contains(weekday: 1, minute: 480))
        #expect(s.contains(weekday: 5, minute: 1139))   // 18:59
        #expect(!s.contains(weekday: 5, minute: 1140))  // 19:00
        #expect(!s.contains(weekday: 6, minute: 600))   // Saturday
        let night = Schedule(name: "n", timeZone: london, days: [5], start: 22 * 60, end: 6 * 60)
        #expect(night.contains(weekday: 5, minute: 23 * 60))
        #expect(night.contains(weekday: 6, minute: 60))   // Saturday 01:00 belongs to Friday's shift
        #expect(!night.contains(weekday: 5, minute: 60))  // Friday 01:00 belongs to Thursday's
        #expect(Schedule.parseHours("08:00-19:00")! == (480, 1140))
        #expect(Schedule.parseHours("00:00-24:00")! == (0, 1440))
        for bad in ["8-19", "08:00", "25:00-26:00", "08:00-08:00", "08:60-09:00", "24:00-08:00"] { #expect(Schedule.parseHours(bad) == nil, "\(bad)") }
    }
}
