import ArgumentParser
import Foundation
import MPCNode

struct ModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Models trained jointly, as this node keeps them (coefficients, lineage, training curve).",
        subcommands: [List.self, Show.self, Export.self])

    static func fetch(_ options: ConfigOption, _ id: String) async throws -> ModelView {
        try await JobCommand.call(options, AdminRequest(command: .showModel, jobID: id)).model!
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the models.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON (for scripts).") var json = false
        func run() async throws {
            let models = try await JobCommand.call(options, AdminRequest(command: .listModels)).models ?? []
            if json { try printJSON(models); return }
            if models.isEmpty { print("no models"); return }
            print(TextTable.render(header: ["model", "job", "mode", "role", "features", "rounds", "AUC", "created"],
                                   rows: models.map { [$0.id, $0.jobID, $0.mode, $0.role, "\($0.features.count)", "\($0.rounds.count)",
                                                       $0.auc.map { String(format: "%.4f", $0) } ?? "-", Format.date($0.createdAt)] }))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a model: coefficients, data, hyper-parameters, metrics and training curve.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Model or job id.") var id: String
        @Flag(help: "Print JSON (for scripts).") var json = false
        func run() async throws {
            let m = try await ModelCommand.fetch(options, id)
            if json { try printJSON(m); return }
            let p = m.training
            func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }
            print("""
                model        \(m.id)   (\(m.mode) logistic regression, job \(m.jobID), this node: \(m.role))
                spec hash    \(m.specHash)
                trained on   \(m.datasets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ", "))
                label        \(m.label.isEmpty ? "(held by the guest)" : m.label)
                training     \(m.isVertical ? "epochs" : "rounds") \(p.rounds), local epochs \(p.localEpochs), learning rate \(p.learningRate), L2 \(p.l2), batch \(p.batchSize), tolerance \(p.tolerance)
                evaluation   \(m.auc == nil ? "final Taylor-approximated loss \(f(m.loss)) (metrics are computed at the guest only)" : "AUC \(f(m.auc)), log-loss \(f(m.loss)), accuracy \(f(m.accuracy)) on \(m.evaluatedRows.map(String.init) ?? "-") rows")

                """)
            if m.features.isEmpty {
                print("coefficients: none at this node (the \(m.role) holds no block of the model)")
            } else {
                var rows = m.features.map { [$0, String(format: "%+.6f", m.weights[$0] ?? 0)] }
                if m.role != "host" { rows.append(["(intercept)", String(format: "%+.6f", m.bias)]) }
                print(TextTable.render(header: ["feature", "weight"], rows: rows))
                if m.role == "host" { print("(the intercept and the other features' weights are held by the guest)") }
                if m.role == "guest" { print("(the host's features' weights are held by the host)") }
            }
            if !m.rounds.isEmpty {
                print(m.isVertical ? "\ntraining curve (Taylor-approximated log-loss over each epoch)"
                                           : "\ntraining curve (the consortium's log-loss at the start of each round)")
                print(TextTable.render(header: [m.isVertical ? "epoch" : "round", "loss", "rows", "contributors"],
                                       rows: m.rounds.map { ["\($0.round)", String(format: "%.6f", $0.loss), $0.samples > 0 ? "\($0.samples)" : "-",
                                                             $0.contributors.joined(separator: ",")] }))
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a model as JSON to standard output.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Model or job id.") var id: String
        func run() async throws { try printJSON(try await ModelCommand.fetch(options, id)) }
    }
}
