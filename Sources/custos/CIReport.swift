import ArgumentParser
import CustosCore
import Foundation

struct CICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ci",
        abstract: "Steps for CI/CD pipelines (see also `custos scan-log --report`).",
        subcommands: [CIReport.self])
}

struct CIReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report the secrets this pipeline run uses to a running `custos serve`.",
        discussion: """
            Posts one `custos.event/v1` event per secret to POST /v1/ingest?format=custos: action \
            `use`, outcome success, the secret's path (and the run's environment, when known), the \
            run's pipeline context, identity kind `pipeline` with id PROVIDER:REPOSITORY (e.g. \
            github:octo-org/payments), name the workflow (else the repository) and method \
            ci-report; source kind custos-ci, instance the provider. With --github-oidc the \
            identity is left to the server, which takes it from the verified token (id its sub, \
            method oidc) and replaces the pipeline context by the token's, keeping job, step and \
            scope.

            Secrets are NAMES or PATHS as the secret store knows them (secret/data/prod/db, \
            STRIPE_KEY), never values: --secret (repeatable) and --secrets-file FILE (one a line, \
            `#` comments). At most 1,000, each at most 1,024 bytes without control characters; \
            anything that looks like a value (holds `=`, starts like a well-known token, or has a \
            long random-looking part) is refused without being printed.

            Pipeline context: GitHub Actions (GITHUB_ACTIONS=true) and GitLab CI (GITLAB_CI=true) \
            are read from the environment; every part can be overridden by its flag, and other \
            providers give it with --provider, --repository, --run-id and the rest. Provider, \
            repository and run id are required.

            Event ids are SHA-256 (32 hex digits) of provider, repository, run id, attempt, job, \
            step and secret path: running the step again reports duplicates, not new events; a \
            new attempt of the run reports new ones.

            The token is read from the environment (CUSTOS_TOKEN, or --token-env NAME), never \
            from the command line, and is never printed. --dry-run prints the events as NDJSON \
            instead (no server, no token).

            Exit codes: 0 reported (prints accepted and duplicates); 2 bad usage or input (no \
            pipeline context, no token, a bad secret path); 3 the server could not be reached, \
            refused the credentials, or answered an error (its reason is printed).
            """)

    @Option(name: .customLong("secret"), help: ArgumentHelp("A secret's path or name, as the secret store knows it (repeatable). Never a value.", valueName: "PATH"))
    var secrets: [String] = []

    @Option(name: .customLong("secrets-file"), help: ArgumentHelp("Read secret paths from FILE, one a line (`#` comments).", valueName: "FILE"))
    var secretsFile: String?

    @Option(help: ArgumentHelp("The custos server (default: CUSTOS_URL), e.g. https://custos.example.com:8420.", valueName: "URL"))
    var url: String?

    @Option(help: ArgumentHelp("The time of the events, RFC 3339 (default: now).", valueName: "TIME"))
    var time: String?

    @Flag(name: .customLong("dry-run"), help: "Print the events as NDJSON instead of posting them.")
    var dryRun = false

    @OptionGroup(title: "Credentials")
    var auth: ReportAuthOptions

    @OptionGroup(title: "Pipeline context")
    var pipeline: PipelineOptions

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let paths = try SecretNames.collect(flags: secrets, file: secretsFile)
        guard !paths.isEmpty else { throw CLIError.usage("no secrets to report: give --secret PATH or --secrets-file FILE") }
        let context = try pipeline.resolve(env)
        let eventTime = try CIEvents.parseTime(time)

        if dryRun {
            let builder = CIEvents(pipeline: context, identityFromToken: auth.githubOIDC != nil, time: eventTime)
            var out: [UInt8] = []
            for p in paths { out += builder.use(p).canonicalJSON(); out.append(0x0A) }
            FileHandle.standardOutput.write(Data(out))
            return
        }
        guard let server = url ?? env["CUSTOS_URL"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw CLIError.usage("no server: give --url URL or set CUSTOS_URL (or --dry-run to print the events)")
        }
        _ = try IngestPoster.baseURL(server)
        let credential = try auth.credential(env)
        let builder = CIEvents(pipeline: context, identityFromToken: auth.githubOIDC != nil, time: eventTime)
        let events = paths.map(builder.use)
        let a = try postReport(events, url: server, auth: auth, credential: credential)
        if a.rejected > 0 {
            throw CLIError.operational("the server rejected \(a.rejected) of \(events.count) event(s): \(a.rejections.joined(separator: "; "))")
        }
        print("reported \(events.count) secret use(s) of \(runLabel(context)): accepted \(a.accepted), duplicates \(a.duplicates)")
    }
}
