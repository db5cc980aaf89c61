// Unit tests of the demo app's logic on a plain JVM, over real wallets and
// the real registry the JVM suite runs against (scripts/test.d/60-kotlin.sh
// passes -Dtessera.registry.url). No Android, no mocks.
package tessera.demo

import java.nio.file.Files
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import tessera.demo.logic.WalletViewModel
import uniffi.tessera.Amount
import uniffi.tessera.Keystore
import uniffi.tessera.NfcChannel
import uniffi.tessera.Wallet
import uniffi.tessera.generateStorageKey
import uniffi.tessera.loopbackNodeConfig

private class Key : Keystore {
    private val key = generateStorageKey()
    override fun storageKey(walletSalt: ByteArray): ByteArray = key.copyOf()
}

private class Field(private val card: WalletViewModel) : NfcChannel {
    override fun transceive(command: ByteArray): ByteArray = card.processApdu(command)
}

private fun expect(condition: Boolean, what: () -> String) {
    if (!condition) throw AssertionError(what())
}

/** Two demo phones with fresh wallets synced with the registry. */
private class Phones(url: String) : AutoCloseable {
    private val dir = Files.createTempDirectory("tessera-demo").toFile()
    private val wallets = listOf("a", "b").map { Wallet.create(dir.resolve("$it.db").path, Key()) }
    val a = WalletViewModel(wallets[0], url)
    val b = WalletViewModel(wallets[1], url)

    init {
        runBlocking { a.sync(); b.sync() }
    }

    override fun close() {
        wallets.forEach { it.close() }
        dir.deleteRecursively()
    }
}

class AppLogicTests(private val url: String, private val event: String) {
    val tests: List<Pair<String, () -> Unit>> = listOf(
        "demo: tickets and balance screens after top-up and purchase; errors become a sentence" to ::screens,
        "demo: a sale over libp2p shows the incoming offer, accept moves ticket and money" to ::saleOnline,
        "demo: a gift by tap lands on the receive screen's phone" to ::giftByTap,
    )

    private fun screens(): Unit = Phones(url).use { p ->
        runBlocking {
            p.a.topUp(3_000uL, "demo-card")
            p.a.buy(event, "A") ?: throw AssertionError("no ticket: ${p.a.state.value.error}")
            p.a.withdraw(500uL)
        }
        val s = p.a.state.value
        expect(s.tickets.size == 1 && s.tickets[0].usesLeft == 1 && !s.tickets[0].pendingOut) { "tickets: $s" }
        expect(s.balance == listOf("5.00 EUR")) { "balance: ${s.balance}" }
        runBlocking { p.a.buy("no-such-event", "A") }
        expect(p.a.state.value.error?.contains("no-such-event") == true) { "error line: ${p.a.state.value.error}" }
    }

    private fun saleOnline(): Unit = Phones(url).use { p ->
        runBlocking {
            withTimeout(60_000) {
                p.b.topUp(2_500uL, "demo-card")
                p.b.withdraw(2_500uL)
                p.a.topUp(2_500uL, "demo-card")
                val ticket = p.a.buy(event, "A") ?: throw AssertionError("no ticket: ${p.a.state.value.error}")
                p.a.goOnline(loopbackNodeConfig())
                val buyerUri = p.b.goOnline(loopbackNodeConfig()) ?: throw AssertionError("offline")
                coroutineScope {
                    val offered = async { p.b.followEvents { it.incoming != null } }
                    // The address may take a moment to appear in the URI.
                    var uri = buyerUri
                    while (!uri.contains("a=")) { kotlinx.coroutines.delay(20); uri = p.b.goOnline(loopbackNodeConfig()) ?: uri }
                    p.a.offerOnline(uri, ticket, Amount("EUR", 2_500uL)) ?: throw AssertionError("offer: ${p.a.state.value.error}")
                    offered.await()
                }
                val incoming = p.b.state.value.incoming ?: throw AssertionError("no incoming offer")
                expect(incoming.price == "25.00 EUR" && !incoming.byTap) { "offer screen: $incoming" }
                p.b.acceptIncoming()
                p.b.followEvents { s -> s.tickets.any { it.id == ticket } }
                p.a.followEvents { s -> s.transfers.any { it.done && it.sending } }
                p.a.goOffline()
                p.b.goOffline()
                expect(p.b.state.value.tickets.single().id == ticket) { "the buyer holds it: ${p.b.state.value}" }
                expect(p.a.state.value.balance == listOf("25.00 EUR")) { "the seller was paid: ${p.a.state.value}" }
            }
        }
    }

    private fun giftByTap(): Unit = Phones(url).use { p ->
        runBlocking { p.a.topUp(200uL, "demo-card"); p.a.withdraw(200uL) }
        p.b.receiveScreenOpen(true)
        val done = p.a.sendByTap(Field(p.b), listOf(p.a.noteIds().first()))
        p.b.onTapEnded()
        expect(done) { "one tap completes a gift: ${p.a.state.value.error}" }
        expect(p.b.state.value.balance == listOf("2.00 EUR")) { "received: ${p.b.state.value}" }
        expect(p.a.state.value.balance.isEmpty()) { "given: ${p.a.state.value}" }
    }
}
