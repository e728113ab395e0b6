import CustosAlerting
@testable import CustosCore
import Foundation
import Testing

/// One policy over a mixed stream (OpenBao + CloudTrail + Kubernetes) raises what it raises
/// for each source alone: a human reading a production secret from an unknown address alerts
/// whichever store it came from, and the same human from the office does not.
@Suite struct MixedSourcesDetectionTests {
    static let policy = """
        owners:
          sec: { name: Security team, notify: [ { webhook: "http://127.0.0.1:9/x" } ] }
        networks:
          office: [203.0.113.0/24]
        identities:
          - { match: "*", networks: [office] }
        secrets:
          - { match: "*prod*", environment: prod }
        classes:
          access_known_ip: { action: log }
          unknown_ip:      { action: alert, severity: high, owner: sec, sla: 1h }
          off_hours:       { action: alert, severity: medium, owner: sec, sla: 4h }
          out_of_scope:    { action: alert, severity: critical, owner: sec, sla: 30m }
        """

    static func cloudTrail(ip: String, n: Int) -> String {
        #"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEALICE0001","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"},"eventTime":"2026-11-30T10:0\#(n):00Z","eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","awsRegion":"eu-west-1","sourceIPAddress":"\#(ip)","userAgent":"aws-cli/2.15.0","requestParameters":{"secretId":"prod/payments/db"},"responseElements":null,"requestID":"2222222\#(n)-1111-4111-8111-111111111111","eventID":"e000000\#(n)-0000-4000-8000-000000000001","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#
    }

    static func kubernetes(ip: String, n: Int) -> String {
        #"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0b7c1a2e-000\#(n)-4000-8000-000000000099","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/secrets/db-creds","verb":"get","user":{"username":"alice@example.com","groups":["system:authenticated"]},"sourceIPs":["\#(ip)"],"userAgent":"kubectl/v1.30.1","objectRef":{"resource":"secrets","namespace":"prod","name":"db-creds","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-30T10:1\#(n):00.000000Z","stageTimestamp":"2026-11-30T10:1\#(n):00.000100Z"}"#
    }

    static func decode(_ format: SourceFormat, _ lines: [String]) -> [AccessEvent] {
        let out = SourceStreamDecoder.decodeAll(Array(lines.joined(separator: "\n").utf8), decoder: format.decoder(instance: "mixed"))
        return out.compactMap { if case .event(let e, _) = $0 { return e } else { return nil } }
    }

    /// alice on OpenBao, AWS Secrets Manager and Kubernetes: first from the office, then from
    /// an address outside every network.
    static func streams() throws -> [String: [AccessEvent]] {
        var bao = [Records.at(Records.aliceRead, "2026-11-30T10:20:00Z", ip: "203.0.113.9", path: "secret/data/prod/payments/db"),
                   Records.at(Records.aliceRead, "2026-11-30T10:21:00Z", ip: "198.18.0.9", path: "secret/data/prod/payments/db")]
        bao[0].id = "bao-read-office"; bao[1].id = "bao-read-elsewhere"   // two accesses, two ids
        let aws = decode(.cloudtrail, [cloudTrail(ip: "203.0.113.9", n: 1), cloudTrail(ip: "198.18.0.9", n: 2)])
        let k8s = decode(.kubernetes, [kubernetes(ip: "203.0.113.9", n: 1), kubernetes(ip: "198.18.0.9", n: 2)])
        try #require(aws.count == 2 && k8s.count == 2, "decoded \(aws.count) CloudTrail and \(k8s.count) Kubernetes events")
        return ["openbao": bao, "aws": aws, "kubernetes": k8s]
    }

    /// The alerts of a run, keyed by the id of the event they are about.
    static func classesByEvent(_ events: [AccessEvent]) throws -> [String: [AlertClass]] {
        let loaded = try PolicyLoader.load(yaml: policy, baseDirectory: AlertingFixtures.path)
        let alerts = Scenario.run(loaded, events).filter { $0.status == .raised }
        var out: [String: [AlertClass]] = [:]
        for a in alerts {
            for i in a.evidence { out[events[Int(i)].id, default: []].append(a.alertClass) }
        }
        return out.mapValues { $0.sorted() }
    }

    @Test func aHumanIsAHumanInEverySourceAndProductionIsProduction() throws {
        for (source, events) in try Self.streams() {
            #expect(events.allSatisfy { $0.identity.kind == .human }, "\(source): \(events.map(\.identity))")
            #expect(events.allSatisfy { $0.action == .read && $0.outcome == .success }, "\(source)")
            #expect(events.allSatisfy { ($0.secret?.path ?? "").contains("prod") }, "\(source): \(events.map { $0.secret?.path ?? "-" })")
        }
    }

    @Test func oneMixedStreamRaisesWhatEachSourceRaisesAlone() throws {
        let streams = try Self.streams()
        var alone: [String: [AlertClass]] = [:]
        for (source, events) in streams {
            let c = try Self.classesByEvent(events)
            // From the office: nothing; from 198.18.0.9: unknown_ip, whatever the store.
            #expect(c[events[0].id] == nil, "\(source): \(c)")
            #expect(c[events[1].id] == [.unknown_ip], "\(source): \(c)")
            alone.merge(c) { a, _ in a }
        }
        // Interleaved by time, through one engine.
        let mixed = streams.values.flatMap { $0 }.sorted { $0.time < $1.time }
        #expect(Set(mixed.map(\.source.kind)) == ["openbao", "aws", "kubernetes"])
        #expect(try Self.classesByEvent(mixed) == alone)
    }
}
