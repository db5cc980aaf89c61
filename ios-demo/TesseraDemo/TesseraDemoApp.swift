// The iOS demo: the same screens as android-demo, over the Swift bindings.
import SwiftUI
import Tessera

@main
struct TesseraDemoApp: App {
    @StateObject private var model: WalletModel = {
        let path = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
            .appendingPathComponent("wallet.db").path
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let keystore = KeychainKeystore()
        let wallet = (try? Wallet.open(path: path, keystore: keystore)) ?? (try! Wallet.create(path: path, keystore: keystore))
        return WalletModel(wallet: wallet, registryUrl: "http://127.0.0.1:7700")
    }()

    var body: some Scene {
        WindowGroup { ContentView().environmentObject(model).task { await model.refresh() } }
    }
}

struct ContentView: View {
    @EnvironmentObject var model: WalletModel
    @State private var giver: NfcGiver?

    var body: some View {
        List {
            if let error = model.error { Text("⚠ \(error)").foregroundColor(.red) }
            if let gate = model.gateAnswer { Text(gate).font(.title) }
            if let offer = model.incoming {
                Section("Incoming offer") {
                    Text("\(offer.items.joined(separator: ", ")) \(offer.price.map { "for \($0)" } ?? "(gift)")")
                    HStack {
                        Button("Accept") { Task { await model.answer(accept: true) } }
                        Button("Decline") { Task { await model.answer(accept: false) } }
                    }
                }
            }
            Section("Balance") { ForEach(model.balance, id: \.self) { Text($0) } }
            Section("Tickets") {
                ForEach(model.tickets, id: \.id) { t in
                    HStack {
                        Text("\(t.label) · \(t.usesLeft) use(s)\(t.holding == .pendingOut ? " · sending…" : "")")
                        Spacer()
                        Button("Give by tap") { giver = NfcGiver(model: model, ids: [t.id]); giver?.begin() }
                    }
                }
            }
            Section("Transfers") {
                ForEach(model.transfers, id: \.exchange) { Text("\($0.role == .sender ? "→" : "←") \($0.exchange.prefix(8)) \($0.state)") }
            }
            Section {
                Button("Sync") { Task { await model.sync() } }
                Button(model.uri == nil ? "Go online" : "Go offline") {
                    Task { if model.uri == nil { await model.goOnline() } else { await model.goOffline() } }
                }
                if let uri = model.uri { Text(uri).font(.caption) }
            }
        }
    }
}
