import ArgumentParser
import CustosAlerting
import CustosCore
import Foundation

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Work with alerting policy files.",
        subcommands: [PolicyCheck.self])
}

struct PolicyCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a policy file; list every problem by key path.",
        discussion: """
            Exit 0 when the policy loads (warnings, such as a class that is only logged, are \
            printed but do not fail the check); 1 when it has problems, each printed as \
            `key.path (line L, column C): what is wrong`; 2 when the file cannot be read. A \
            policy in which an alerting class has no owner, or an owner has no notification \
            target, is refused. Notification URLs and keys are never printed.
            """)

    @Argument(help: ArgumentHelp("The policy file (YAML).", valueName: "FILE"))
    var file: String

    @Flag(help: "Print only problems (no summary).")
    var quiet = false

    func run() throws {
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw CLIError.usage("cannot read \(file)")
        }
        let loaded: LoadedPolicy
        do {
            loaded = try PolicyLoader.load(path: file)
        } catch {
            for p in error.problems { print("\(file): \(p)") }
            throw CLIError.failed("\(file): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s"); the policy was not loaded")
        }
        let p = loaded.policy
        for w in p.warnings { stderrPrint("warning: \(w)") }
        if quiet { return }
        print("\(file): OK")
        print("  networks:   \(p.networks.keys.sorted().map { "\($0) (\(p.networks[$0]!.count))" }.joined(separator: ", ").nonEmptyOr("none"))")
        print("  schedules:  \((["always"] + p.schedules.keys.sorted()).joined(separator: ", "))")
        print("  identities: \(p.identities.count) rule\(p.identities.count == 1 ? "" : "s"), first match wins")
        let pl = p.pipelines
        print("  pipelines:  runner networks \(pl.runnerNetworks.isEmpty ? "not checked" : pl.runnerNetworks.joined(separator: ", ")); production \(pl.production.joined(separator: ", ")); started by hand by \(pl.manualTriggers.isEmpty ? "nobody" : pl.manualTriggers.joined(separator: ", "))")
        for sc in pl.scopes {
            let which = [sc.provider.map { "provider \($0)" }, Optional(sc.repository), sc.workflow.map { "workflow \($0)" },
                         sc.environment.map { "environment \($0)" }].compactMap { $0 }.joined(separator: " ")
            print("    \(which): \(sc.secrets.joined(separator: ", "))\(sc.runnerNetworks.map { "; runners \($0.joined(separator: ", "))" } ?? "")")
        }
        if let g = loaded.geoDatabase {
            print("  geoip:      \(loaded.geoDatabasePath ?? "") (\(g.metadata.databaseType)), countries \(p.geoip!.countries.sorted().joined(separator: ", ").nonEmptyOr("none"))")
        }
        print("  owners:")
        for key in p.owners.keys.sorted() {
            let o = p.owners[key]!
            print("    \(key) (\(o.name)): \(o.notify.map(\.description).joined(separator: "; "))\(o.escalation.isEmpty ? "" : "; escalates to \(o.escalation.joined(separator: " → "))")")
        }
        print("  classes:")
        let width = AlertClass.allCases.map(\.rawValue.count).max() ?? 18
        for c in AlertClass.allCases.sorted() {
            let s = p.settings(c)
            if s.alert {
                let owner = s.owner.flatMap { p.owners[$0] }.map { "\($0.key) (\($0.name))" } ?? "?"
                print("    \(c.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)) alert  \(s.severity.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) → \(owner), SLA \(s.sla.map(ConfigDuration.format) ?? "?")\(s.playbook.map { ", playbook \($0)" } ?? "")")
            } else {
                print("    \(c.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)) log")
            }
        }
        print("  playbooks:")
        for pb in p.playbooks {
            print("    \(pb.id) \(pb.title) (\(pb.priority), respond within \(ConfigDuration.format(pb.responseGoal))): \(pb.classes.map(\.rawValue).joined(separator: ", ").nonEmptyOr("no class")), \(pb.steps.count) step\(pb.steps.count == 1 ? "" : "s")")
        }
        // A class that names a playbook the policy does not have.
        for c in AlertClass.allCases.sorted() {
            if let id = p.settings(c).playbook, !p.playbooks.contains(where: { $0.id == id }) {
                print("  note: \(c.rawValue) names playbook \(id), which is neither a default nor in playbooks:")
            }
        }
    }
}

extension String {
    func nonEmptyOr(_ fallback: String) -> String { isEmpty ? fallback : self }
}
