import Foundation
import Testing
@testable import CustosCore

/// The AWS CloudTrail and Google Cloud audit log decoders, on the carried public records
/// (Fixtures/sources/aws-1, aws-2, aws-5, gcp-1) and on records written from the documented
/// field sets (cloudtrail-secrets, cloudtrail-logfile, gcp-secrets: see their .src files).
@Suite("Cloud decoders")
struct CloudDecoderTests {
    static func decode(_ file: String, _ format: SourceFormat, instance: String = "default") throws -> Decoded {
        Decoded(SourceStreamDecoder.decodeAll(try Fixture.data("sources/" + file), decoder: format.decoder(instance: instance)))
    }

    static func decodeText(_ text: String, _ format: SourceFormat) -> Decoded {
        Decoded(SourceStreamDecoder.decodeAll(Array(text.utf8), decoder: format.decoder(instance: "default")))
    }

    static func time(_ s: String) -> Int64 { SourceTime.parse(text: s)!.unixNanos }

    /// Nothing a request or response could hold a value in reaches an event.
    static func expectNoValues(_ events: [AccessEvent]) throws {
        for e in events {
            let json = String(decoding: e.canonicalJSON(), as: UTF8.self)
            for marker in ["HIDDEN_DUE_TO_SECURITY_REASONS", "SECRETMESSAGE", "AKIA", "ASIA", "clientRequestToken", "errorMessage",
                           "withDecryption", "recoveryWindow", "tok-1", "Permission '"] {
                #expect(!json.contains(marker), "\(marker) in \(json)")
            }
            #expect(try AccessEvent.decode(e.canonicalJSON()) == e)
        }
    }

    // MARK: - CloudTrail, public records

    @Test("aws-1: BatchGetSecretValue is one read per secret of secretIdList, ARN suffixes removed")
    func awsBatch() throws {
        let d = try Self.decode("aws-1.json", .cloudtrail)
        #expect(d.rejected.isEmpty && d.ignored.isEmpty, "\(d.rejected) \(d.ignored)")
        let e = d.events.map(\.event)
        #expect(e.map { $0.secret?.path } == ["aws/us-east-1/secretsmanager/MyTestSecret", "aws/us-east-1/secretsmanager/DdApiKeySecret-aUFEgO4SmSGN"])
        for x in e {
            #expect(x.action == .read && x.outcome == .success && x.reason == nil)
            #expect(x.source == .init(kind: "aws", instance: "default"))
            #expect(x.secret?.store == "aws/000000000")
            #expect(x.identity == .init(id: "arn:aws:iam::000000000:user/test@elastic.co", name: "test@elastic.co", kind: .human, method: "iam_user"))
            #expect(x.origin == .init(ip: "216.160.83.56"))
            #expect(x.time.description == "2024-10-11T08:56:05Z")
            #expect(x.requestID == "52bd26ff-6fe4-4929-b853-2bda688a84f1")
        }
        #expect(e[0].id != e[1].id)
        try Self.expectNoValues(e)
    }

    @Test("aws-2: a denied GetSecretValue by an IAM Identity Center (SSO) session is a human; a zone-less eventTime is UTC")
    func awsDeniedSSO() throws {
        let d = try Self.decode("aws-2.json", .cloudtrail)
        #expect(d.rejected.isEmpty && d.events.count == 1, "\(d.rejected)")
        let e = d.events[0].event
        #expect(e.action == .read && e.outcome == .denied && e.reason == "permission denied")
        #expect(e.secret == .init(store: "aws/123123123123", path: "aws/us-west-2/secretsmanager/stratus-red-team-retrieve-secret-3"))
        #expect(e.identity.kind == .human && e.identity.name == "evil.genius" && e.identity.method == "sso")
        #expect(e.identity.id == "arn:aws:sts::123123123123:assumed-role/AWSReservedSSO_DevAdmin_635426549a280cc6/evil.genius")
        #expect(e.origin == .init(ip: "123.123.123.123"))
        // Panther's normalised "2024-10-17 21:48:45.000000000" (no zone): CloudTrail times are UTC.
        #expect(e.time.unixNanos == Self.time("2024-10-17T21:48:45Z"))
        try Self.expectNoValues([e])
    }

    @Test("aws-5: the log-file wrapper is unwrapped; a call of another service is ignored with a reason")
    func awsWrapper() throws {
        let d = try Self.decode("aws-5.json", .cloudtrail)
        #expect(d.rejected.isEmpty && d.events.isEmpty)
        #expect(d.ignored.map(\.reason) == ["CloudTrail event without secret access (cloudtrail)"])
        let node = try JSONNode.parse(try Fixture.data("sources/aws-5.json"))
        #expect(SourceFormat.detect(node) == .cloudtrail)
    }

    // MARK: - CloudTrail, written records

    @Test("every call, identity type and outcome of cloudtrail-secrets.ndjson")
    func awsRecords() throws {
        let d = try Self.decode("cloudtrail-secrets.ndjson", .cloudtrail)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.line) == [3, 12, 17, 18])
        #expect(d.ignored.map(\.reason) == [
            "KMS call made by Secrets Manager for the caller's request (not a second access)",
            "BatchGetSecretValue by filters names no secret (the per-secret GetSecretValue records do)",
            "Secrets Manager event without secret access",
            "CloudTrail event without secret access (ec2)",
        ])
        #expect(d.events.map(\.line) == [1, 2, 4, 5, 6, 7, 8, 9, 9, 10, 11, 13, 14, 15, 16])
        let e = d.events.map(\.event)
        let sm = "aws/eu-west-1/secretsmanager/", ssm = "aws/eu-west-1/ssm/"
        #expect(e.map { $0.secret?.path } == [
            sm + "prod/payments/db", "aws/us-east-1/secretsmanager/MyTestSecret", sm + "prod/payments/db", sm + "staging/api-key",
            sm + "staging/api-key", sm + "prod/payments/db", ssm + "prod/payments/stripe-key", ssm + "prod/payments/db-url",
            ssm + "prod/payments/api-token", ssm + "prod/payments", sm + "prod/legacy", sm + "prod/payments/db",
            sm + "shared/partner-token", sm + "prod/payments/db", sm + "prod/payments/db",
        ])
        #expect(e.map(\.action) == [.read, .read, .write, .write, .delete, .list, .read, .read, .read, .read, .read, .read, .read, .read, .read])
        #expect(e.map(\.outcome) == [.success, .success, .success, .success, .success, .success, .success, .success, .success, .success,
                                     .error, .success, .denied, .success, .denied])
        #expect(e[10].reason == "not found" && e[12].reason == "permission denied" && e[15 - 1].reason == "authentication failed")
        #expect(e.map(\.identity.kind) == [.service, .human, .human, .human, .human, .human, .pipeline, .human, .human, .service,
                                           .root, .human, .unknown, .pipeline, .unknown])
        #expect(e.map(\.identity.method) == ["assumed_role", "iam_user", "iam_user", "iam_user", "iam_user", "sso", "web_identity",
                                             "iam_user", "iam_user", "aws_service", "root", "federated", "aws_account", "web_identity", nil])
        // A service role is named by its role (not the per-instance session name).
        #expect(e[0].identity == .init(id: "arn:aws:iam::111122223333:role/payments-api-task", name: "payments-api-task", kind: .service, method: "assumed_role"))
        #expect(e[5].identity.name == "bob@example.com")
        #expect(e[6].identity.name == "gha-deploy")
        #expect(e[9].identity.name == "ecs-tasks.amazonaws.com")
        #expect(e[10].identity.name == "root" && e[10].identity.id == "arn:aws:iam::111122223333:root")
        #expect(e[11].identity.name == "carol")
        #expect(e[12].identity.name == "account:444455556666")
        #expect(e[13].identity.name == "repo:octo-org/payments:ref:refs/heads/main")
        // Origins: addresses only (a service name is none).
        #expect(e[0].origin == .init(ip: "203.0.113.20") && e[9].origin == nil && e[6].origin == .init(ip: "192.0.2.44"))
        #expect(e.allSatisfy { $0.secret?.store == "aws/111122223333" || $0.secret?.store == "aws/000000000" })
        #expect(e[0].secret?.environment == "prod" && e[3].secret?.environment == "staging")
        #expect(e[2].time.description == "2026-01-05T10:01:00.123Z")
        #expect(Set(e.map(\.id)).count == e.count)
        try Self.expectNoValues(e)
    }

    @Test("the per-secret GetSecretValue record of a BatchGetSecretValue gets the batch event's id (stored once)")
    func batchDuplicates() throws {
        let batch = try Self.decode("aws-1.json", .cloudtrail).events.map(\.event)
        let records = try Self.decode("cloudtrail-secrets.ndjson", .cloudtrail).events.map(\.event)
        let perSecret = records[1]
        #expect(perSecret.secret?.path == batch[0].secret?.path)
        #expect(perSecret.id == batch[0].id)
        #expect(perSecret.id != batch[1].id)
        // The same secret read in another request is another access.
        #expect(records[0].id != records[14].id && records[0].secret?.path == records[14].secret?.path)
    }

    @Test("re-decoding gives the same ids; another instance gives other ids")
    func reingestIDs() throws {
        let a = try Self.decode("cloudtrail-secrets.ndjson", .cloudtrail).events.map(\.event.id)
        let b = try Self.decode("cloudtrail-secrets.ndjson", .cloudtrail).events.map(\.event.id)
        let c = try Self.decode("cloudtrail-secrets.ndjson", .cloudtrail, instance: "other-account").events.map(\.event.id)
        #expect(a == b && Set(a).isDisjoint(with: Set(c)))
        let g1 = try Self.decode("gcp-secrets.ndjson", .gcp).events.map(\.event.id)
        let g2 = try Self.decode("gcp-secrets.ndjson", .gcp).events.map(\.event.id)
        #expect(g1 == g2 && Set(g1).count == g1.count)
    }

    @Test("a log file: as one record, and whole (each record on its own line); gzipped")
    func logFile() throws {
        let bytes = try Fixture.data("sources/cloudtrail-logfile.json")
        let asRecord = try Self.decode("cloudtrail-logfile.json", .cloudtrail)
        #expect(asRecord.rejected.isEmpty && asRecord.events.count == 2 && asRecord.ignored.count == 1)
        #expect(asRecord.events.allSatisfy { $0.line == 1 })
        #expect(asRecord.events.map { $0.event.action } == [.read, .write])

        func whole(_ data: [UInt8], maxRecordBytes: Int = 1 << 20) -> Decoded {
            var s = SourceStreamDecoder(decoder: CloudTrailDecoder(), maxRecordBytes: maxRecordBytes)
            var out: [DecodeOutput] = []
            data.withUnsafeBytes { s.feedWhole($0, into: &out) }
            s.finish(into: &out)
            return Decoded(out)
        }
        // Whole: records are split one by one, so a file larger than one record may be reads.
        let w = whole(bytes, maxRecordBytes: 4096)
        #expect(w.rejected.isEmpty, "\(w.rejected)")
        #expect(w.events.map(\.event) == asRecord.events.map(\.event))
        #expect(w.events[0].line == 3 && w.events[1].line > w.ignored[0].line && w.ignored[0].line > 3)
        let range = bytes.withUnsafeBytes { CloudTrailDecoder.logFileArray($0) }
        #expect(range.map { bytes[$0.lowerBound] } == UInt8(ascii: "[") && range.map { bytes[$0.upperBound - 1] } == UInt8(ascii: "]"))
        #expect(bytes.withUnsafeBytes { CloudTrailDecoder.startsLogFile($0) })
        for notFile in [#"{"Records":[{}],"x":1}"#, #"{"eventName":"x"}"#, #"[{"Records":[]}]"#, "", "{"] {
            #expect(Array(notFile.utf8).withUnsafeBytes { CloudTrailDecoder.logFileArray($0) } == nil, "\(notFile)")
        }
        // Other decoders feed the bytes as they are.
        var gh = SourceStreamDecoder(decoder: GitHubAuditDecoder())
        var out: [DecodeOutput] = []
        bytes.withUnsafeBytes { gh.feedWhole($0, into: &out) }
        gh.finish(into: &out)
        #expect(Decoded(out).events.isEmpty)
        // Gzipped, as S3 delivers trail files: the same events after decompression.
        let gz = try Py.gzip(bytes)
        #expect(gz.prefix(2) == [0x1F, 0x8B])
        let plain = try Gzip.decompress(gz, maxOutput: 1 << 20)
        #expect(whole(plain).events.map(\.event) == asRecord.events.map(\.event))
        // An empty log file.
        #expect(Self.decodeText(#"{"Records":[]}"#, .cloudtrail).ignored.map(\.reason) == ["CloudTrail log file without records"])
        #expect(Self.decodeText(#"{"Records":5}"#, .cloudtrail).rejected.map(\.reason) == ["\"Records\" is not an array"])
        let mixed = Self.decodeText(#"{"Records":[5,{"eventSource":"ec2.amazonaws.com","eventName":"X","eventTime":"2026-01-01T00:00:00Z"}]}"#, .cloudtrail)
        #expect(mixed.rejected.map(\.reason) == ["an element of \"Records\" is not a JSON object"] && mixed.ignored.count == 1)
    }

    @Test("secret ids: names, ARNs with their random suffix, partial ids; SSM names and ARNs")
    func ids() {
        func n(_ s: String) -> String? { CloudTrailDecoder.secretName(s).map { "\($0.name) \($0.region ?? "-") \($0.account ?? "-")" } }
        #expect(n("arn:aws:secretsmanager:us-east-1:000000000:secret:MyTestSecret-nxYStj") == "MyTestSecret us-east-1 000000000")
        #expect(n("arn:aws-cn:secretsmanager:cn-north-1:1:secret:a/b-c-AbCdEf") == "a/b-c cn-north-1 1")
        // A name given as a name is kept as it is, even when it ends like a suffix.
        #expect(n("prod/db-AbCdEf") == "prod/db-AbCdEf - -")
        for bad in ["", "arn:aws:s3:::bucket", "arn:aws:secretsmanager:us-east-1:1:secret:", "a//b", "../x", "a b", "arn:aws:secretsmanager:US:1:secret:x",
                    String(repeating: "a", count: 600), "a\u{0}b"] {
            #expect(n(bad) == nil, "\(bad)")
        }
        func p(_ s: String) -> String? { CloudTrailDecoder.parameterName(s).map { "\($0.name) \($0.region ?? "-") \($0.account ?? "-")" } }
        #expect(p("/prod/db/password") == "prod/db/password - -")
        #expect(p("MyParam:3") == "MyParam - -" && p("/a/b:label") == "a/b - -")
        #expect(p("arn:aws:ssm:eu-west-1:111122223333:parameter/prod/x") == "prod/x eu-west-1 111122223333")
        #expect(p("arn:aws:ssm:eu-west-1:111122223333:parameter/plain") == "plain eu-west-1 111122223333")
        for bad in ["", "/", "a//b", "/a/../b", "a b", "arn:aws:ssm:eu-west-1:1:document/x"] { #expect(p(bad) == nil, "\(bad)") }
        // Outcomes by error code.
        func o(_ code: String?) -> String { let r = CloudTrailDecoder.outcome(code); return "\(r.0.rawValue): \(r.1 ?? "-")" }
        #expect(o(nil) == "success: -" && o("") == "success: -")
        #expect(o("AccessDenied") == "denied: permission denied" && o("AccessDeniedException") == "denied: permission denied")
        #expect(o("Client.UnauthorizedOperation") == "denied: permission denied")
        #expect(o("ExpiredTokenException") == "denied: authentication failed")
        #expect(o("ResourceNotFoundException") == "error: not found" && o("ParameterNotFound") == "error: not found")
        #expect(o("ThrottlingException") == "error: throttled" && o("InvalidParameterException") == "error: invalid request")
        #expect(o("DecryptionFailure") == "error: decryption failed" && o("InternalServiceError") == "error: request failed")
    }

    @Test("CloudTrail records that are not usable are rejected with a reason")
    func awsRejections() {
        let base = #""eventTime":"2026-01-01T00:00:00Z","awsRegion":"eu-west-1","requestID":"r""#
        let cases: [(String, String)] = [
            (#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue",\#(base)}"#, "Secrets Manager call without \"requestParameters.secretId\""),
            (#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue",\#(base),"requestParameters":{"secretId":"a b"}}"#,
             "invalid secret id (not a secret name or a Secrets Manager ARN)"),
            (#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"BatchGetSecretValue",\#(base),"requestParameters":{"secretIdList":"x"}}"#,
             "\"secretIdList\" is not an array"),
            (#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","eventTime":"2026-01-01T00:00:00Z","requestParameters":{"secretId":"x"}}"#,
             "secret without a region (\"awsRegion\" or an ARN)"),
            (#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","eventTime":"soon","requestParameters":{"secretId":"x"}}"#,
             "\"eventTime\" is not a time"),
            (#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","eventVersion":"1.09"}"#, "missing \"eventTime\""),
            (#"{"eventSource":"ssm.amazonaws.com","eventName":"GetParameters",\#(base),"requestParameters":{"names":[]}}"#,
             "SSM GetParameters without a parameter name (or more than 100)"),
            (#"{"eventSource":"ssm.amazonaws.com","eventName":"GetParameter",\#(base),"requestParameters":{"name":"a//b"}}"#, "invalid SSM parameter name"),
        ]
        for (text, reason) in cases {
            let d = Self.decodeText(text, .cloudtrail)
            #expect(d.rejected.map(\.reason) == [reason], "\(text)")
            #expect(d.events.isEmpty)
        }
        // A Batch with one bad id emits nothing (a record is decoded whole or rejected).
        let d = Self.decodeText(#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"BatchGetSecretValue",\#(base),"requestParameters":{"secretIdList":["ok",5]}}"#, .cloudtrail)
        #expect(d.events.isEmpty && d.rejected.count == 1)
        // A GetParameters of public parameters only is ignored.
        let pub = Self.decodeText(#"{"eventSource":"ssm.amazonaws.com","eventName":"GetParameter",\#(base),"requestParameters":{"name":"/aws/service/global-infrastructure/regions"}}"#, .cloudtrail)
        #expect(pub.ignored.map(\.reason) == ["SSM read of AWS public parameters (/aws/service/…)"])
        // A record without userIdentity: unknown actor.
        let anon = Self.decodeText(#"{"eventSource":"secretsmanager.amazonaws.com","eventName":"ListSecrets",\#(base)}"#, .cloudtrail)
        #expect(anon.events.first?.event.identity == .init(kind: .unknown) && anon.events.first?.event.secret?.path == "aws/eu-west-1/secretsmanager")
        #expect(anon.events.first?.event.action == .list)
    }

    // MARK: - GCP

    @Test("gcp-1: AccessSecretVersion is a read; trimmed entry: time from requestAttributes, no principal, no status")
    func gcpPublic() throws {
        let d = try Self.decode("gcp-1.json", .gcp)
        #expect(d.rejected.isEmpty && d.events.count == 1, "\(d.rejected)")
        let e = d.events[0].event
        #expect(e.action == .read && e.outcome == .success)
        #expect(e.source == .init(kind: "gcp", instance: "default"))
        #expect(e.secret == .init(store: "gcp/victim-project", path: "gcp/victim-project/stratus-red-team-retrieve-secret-8"))
        #expect(e.identity == .init(kind: .unknown))
        #expect(e.origin == .init(ip: "7.7.7.7"))
        #expect(e.time.description == "2025-02-02T22:56:34.343726445Z")
        #expect(e.requestID == "j5g83weee2ya")
        #expect(SourceFormat.detect(try JSONNode.parse(try Fixture.data("sources/gcp-1.json"))) == .gcp)
        try Self.expectNoValues([e])
    }

    @Test("every method, identity, outcome and time style of gcp-secrets.ndjson")
    func gcpRecords() throws {
        let d = try Self.decode("gcp-secrets.ndjson", .gcp)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.line) == [10] && d.ignored.map(\.reason) == ["Cloud Audit Logs entry of another service"])
        let e = d.events.map(\.event)
        #expect(e.map(\.action) == [.read, .read, .write, .delete, .write, .list, .list, .read, .read, .delete])
        #expect(e.map(\.outcome) == [.success, .denied, .success, .success, .success, .success, .success, .success, .error, .success])
        #expect(e[1].reason == "permission denied" && e[8].reason == "not found")
        #expect(e.map { $0.secret?.path } == [
            "gcp/acme-prod/db-password", "gcp/acme-prod/db-password", "gcp/acme-prod/db-password", "gcp/acme-prod/db-password",
            "gcp/acme-prod/staging-api-key", "gcp/acme-prod", "gcp/acme-prod/db-password", "gcp/acme-prod/europe-west1/stripe-key",
            "gcp/acme-prod/old-token", "gcp/acme-prod/staging-api-key",
        ])
        #expect(e.allSatisfy { $0.secret?.store == "gcp/acme-prod" })
        #expect(e.map(\.identity.kind) == [.service, .human, .human, .human, .human, .human, .service, .pipeline, .service, .human])
        #expect(e.map(\.identity.method) == ["service_account", "user", "user", "user", "user", "user", "impersonation", "workload_identity",
                                             "service_account", "user"])
        #expect(e[0].identity.name == "payments@acme-prod.iam.gserviceaccount.com" && e[1].identity.name == "mallory@example.com")
        #expect(e[7].identity.name == "repo:octo-org/payments:ref:refs/heads/main")
        #expect(e[0].origin == .init(ip: "198.51.100.30") && e[8].origin == nil && e[7].origin == .init(ip: "192.0.2.50"))
        // Time styles: ns fraction, +01:00 offset, epoch milliseconds.
        #expect(e[0].time.description == "2026-01-06T08:00:00.123456789Z")
        #expect(e[2].time.description == "2026-01-06T08:02:00Z")
        #expect(e[9].time.description == "2026-01-06T08:00:00.000Z")
        #expect(e.map(\.requestID) == ["1a2b3c4d5e", "2b3c4d5e6f", "3c4d5e6f7a", "4d5e6f7a8b", "5e6f7a8b9c", "6f7a8b9c0d", "7a8b9c0d1e",
                                       "8b9c0d1e2f", "9c0d1e2f3a", "1e2f3a4b5c"])
        try Self.expectNoValues(e)
    }

    @Test("GCP pitfalls: omitted granted is false, status {} is success, other codes are errors; resource names")
    func gcpPitfalls() {
        func entry(_ extra: String, resource: String = "projects/p/secrets/s/versions/1",
                   method: String = "google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion") -> String {
            #"{"insertId":"i","timestamp":"2026-01-01T00:00:00Z","protoPayload":{"serviceName":"secretmanager.googleapis.com","methodName":"\#(method)","resourceName":"\#(resource)"\#(extra)}}"#
        }
        func one(_ text: String) -> AccessEvent? { Self.decodeText(text, .gcp).events.first?.event }
        #expect(one(entry(#","authorizationInfo":[{"permission":"secretmanager.versions.access"}]"#))?.outcome == .denied)
        #expect(one(entry(#","authorizationInfo":[{"granted":false}],"status":{}"#))?.outcome == .denied)
        #expect(one(entry(#","authorizationInfo":[{"granted":true}],"status":{}"#))?.outcome == .success)
        #expect(one(entry(#","status":{}"#))?.outcome == .success)
        #expect(one(entry(#","status":{"code":0}"#))?.outcome == .success)
        func outcome(_ e: AccessEvent?) -> String { e.map { "\($0.outcome.rawValue): \($0.reason ?? "-")" } ?? "none" }
        #expect(outcome(one(entry(#","status":{"code":7,"message":"denied SECRETMESSAGE"}"#))) == "denied: permission denied")
        #expect(one(entry(#","status":{"code":16}"#))?.outcome == .denied)
        #expect(outcome(one(entry(#","status":{"code":13}"#))) == "error: request failed")
        #expect(one(entry(#","status":{"code":8}"#))?.reason == "throttled")
        // The version is not part of the path; v1beta methods too.
        #expect(one(entry("", resource: "projects/p/secrets/s/versions/latest"))?.secret?.path == "gcp/p/s")
        #expect(one(entry("", resource: "projects/p/secrets/s", method: "google.cloud.secretmanager.v1beta1.SecretManagerService.AddSecretVersion"))?.action == .write)
        #expect(one(entry("", resource: "projects/p/secrets/s", method: "google.iam.v1.IAMPolicy.SetIamPolicy"))?.action == .policyChange)
        let rejected: [(String, String)] = [
            (entry("", resource: "projects/p/buckets/b"), "missing or invalid \"protoPayload.resourceName\" (projects/<p>/secrets/<s>)"),
            (entry("", resource: "projects/p/secrets/s/versions/1/extra"), "missing or invalid \"protoPayload.resourceName\" (projects/<p>/secrets/<s>)"),
            (entry("", resource: "projects/../secrets/s"), "missing or invalid \"protoPayload.resourceName\" (projects/<p>/secrets/<s>)"),
            (entry("", resource: "projects/p"), "AccessSecretVersion without a secret in \"resourceName\""),
            (#"{"protoPayload":{"serviceName":"secretmanager.googleapis.com"},"timestamp":"2026-01-01T00:00:00Z"}"#, "missing or invalid \"protoPayload.methodName\""),
            (#"{"protoPayload":{"methodName":"x"}}"#, "missing \"timestamp\""),
            (#"{"protoPayload":{"methodName":"x"},"timestamp":"2026-01-01T00:00:00"}"#, "\"timestamp\" is not a time"),
            (#"{"insertId":"x","timestamp":"2026-01-01T00:00:00Z"}"#, "missing \"protoPayload\" (not a Cloud Audit Logs entry)"),
        ]
        for (text, reason) in rejected { #expect(Self.decodeText(text, .gcp).rejected.map(\.reason) == [reason], "\(text)") }
        #expect(Self.decodeText(entry("", method: "google.cloud.secretmanager.v1.SecretManagerService.GetIamPolicy"), .gcp).ignored.map(\.reason)
                == ["Secret Manager call without secret access"])
    }

    @Test("format detection: CloudTrail records and log files, GCP entries; not each other's, not Vault's")
    func detection() throws {
        func node(_ s: String) throws -> JSONNode { try JSONNode.parse(Array(s.utf8)) }
        #expect(SourceFormat.detect(try node(#"{"eventSource":"s","eventName":"n","eventTime":"t"}"#)) == .cloudtrail)
        #expect(SourceFormat.detect(try node(#"{"Records":[{"eventSource":"s","eventName":"n","eventVersion":"1"}]}"#)) == .cloudtrail)
        #expect(SourceFormat.detect(try node(#"{"Records":[]}"#)) == .cloudtrail)
        #expect(SourceFormat.detect(try node(#"{"Records":[{"a":1}]}"#)) == nil)
        #expect(SourceFormat.detect(try node(#"{"protoPayload":{"methodName":"m"},"insertId":"i"}"#)) == .gcp)
        #expect(SourceFormat.detect(try node(#"{"protoPayload":"x"}"#)) == nil)
        #expect(SourceFormat.detect(try node(#"{"time":"2026-01-01T00:00:00Z","type":"response","auth":{},"request":{"id":"x"}}"#)) == nil)
        for f in ["github-1.json", "gitlab-1.json", "github-secrets.ndjson", "gitlab-variables.ndjson"] {
            // These files hold several records: split them as the stream decoder does.
            var splitter = JSONRecordSplitter()
            var nodes: [JSONNode] = []
            splitter.feed(try Fixture.data("sources/" + f)) { item in
                if case .record(let b, _, _, _) = item, let v = try? JSONNode.parse(b) { nodes.append(v) }
            }
            splitter.finish { _ in }
            #expect(!nodes.isEmpty, "\(f)")
            for v in nodes { #expect(!CloudTrailDecoder.recognizes(v) && !GCPAuditDecoder.recognizes(v), "\(f)") }
        }
        // In a shipper's envelope.
        let inner = #"{"eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","eventTime":"2026-01-01T00:00:00Z","awsRegion":"eu-west-1","requestParameters":{"secretId":"x"}}"#
        let quoted = inner.replacingOccurrences(of: "\"", with: "\\\"")
        #expect(Self.decodeText(#"{"message":"\#(quoted)"}"#, .cloudtrail).events.first?.event.secret?.path == "aws/eu-west-1/secretsmanager/x")
    }

    // MARK: - Fuzz

    @Test("fuzz: mutated and truncated real records, random bytes, deep nesting, huge strings")
    func fuzz() throws {
        var rng = SeededRNG(seed: 0x636C_6F75_6474_7261)
        var seeds: [[UInt8]] = []
        for f in ["aws-1.json", "aws-2.json", "aws-5.json", "gcp-1.json", "cloudtrail-logfile.json"] { seeds.append(try Fixture.data("sources/" + f)) }
        for f in ["cloudtrail-secrets.ndjson", "gcp-secrets.ndjson"] { seeds += try Fixture.lines("sources/" + f) }
        let secret = Array("SUPERSECRETVALUE".utf8)
        let formats: [SourceFormat] = [.cloudtrail, .gcp]
        for round in 0..<2000 {
            var b = rng.pick(seeds)
            switch round % 6 {
            case 0: b = Array(b.prefix(rng.int(0...b.count)))
            case 1: for _ in 0..<rng.int(1...8) where !b.isEmpty { b[rng.int(0...(b.count - 1))] = UInt8.random(in: 0...255, using: &rng) }
            case 2: for _ in 0..<rng.int(1...4) where !b.isEmpty { b.insert(rng.pick(Array("{}[]\",:\\\n0/-".utf8)), at: rng.int(0...b.count)) }
            case 3: b = (0..<rng.int(0...400)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 4: b = Array(repeating: rng.pick(Array("[{".utf8)), count: rng.int(30...5000)) + secret
            case 5 where round % 60 != 5:
                let i = rng.int(0...b.count), j = rng.int(i...b.count), k = rng.int(0...b.count)
                b.insert(contentsOf: Array(b[i..<j]), at: k)
            default:
                if let at = b.firstIndex(of: 0x3A) { b.insert(contentsOf: Array("\"".utf8) + Array(repeating: 0x41, count: rng.int(70_000...300_000)) + secret + Array("\",".utf8), at: at + 1) }
            }
            for format in formats {
                var outs = SourceStreamDecoder.decodeAll(b, decoder: format.decoder(instance: "fuzz"))
                var s = SourceStreamDecoder(decoder: format.decoder(instance: "fuzz"))
                b.withUnsafeBytes { s.feedWhole($0, into: &outs) }
                s.finish(into: &outs)
                for o in outs {
                    switch o {
                    case .rejected(let r): #expect(!r.reason.contains("SUPERSECRET") && r.reason.utf8.count < 300 && r.line >= 1)
                    case .ignored(_, let reason): #expect(!reason.contains("SUPERSECRET"))
                    case .event(let e, _):
                        #expect(e.canonicalJSON().count <= AccessEvent.maxEncodedSize)
                        #expect(!String(decoding: e.canonicalJSON(), as: UTF8.self).contains("SUPERSECRET"))
                    }
                }
            }
            // gzip of garbage never traps.
            _ = try? Gzip.decompress([UInt8]([0x1F, 0x8B, 0x08]) + Array(b.prefix(200)), maxOutput: 1 << 16)
        }
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)
        for format in formats {
            let d = Decoded(SourceStreamDecoder.decodeAll(Array("{\"Records\":".utf8) + deep + Array("}".utf8), decoder: format.decoder(instance: "x")))
            #expect(d.rejected.map(\.reason) == ["record nested more than 32 levels"] && d.events.isEmpty)
        }
        // A log file whose records are nested too deeply is rejected record by record.
        var s = SourceStreamDecoder(decoder: CloudTrailDecoder())
        var out: [DecodeOutput] = []
        let file = Array("{\"Records\":[{\"a\":".utf8) + deep + Array("}]}".utf8)
        file.withUnsafeBytes { s.feedWhole($0, into: &out) }
        s.finish(into: &out)
        #expect(Decoded(out).rejected.count == 1 && Decoded(out).events.isEmpty)
    }
}
