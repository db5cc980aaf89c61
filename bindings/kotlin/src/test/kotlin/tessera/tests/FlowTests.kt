// The flows an app runs, end to end against real processes: the registry
// (`tessera-registry serve`), two Kotlin wallets talking libp2p on loopback,
// a phone-to-phone NFC tap, the gate engine over process_apdu, and
// reconciliation. Errors are checked as Kotlin exceptions with their text.
package tessera.tests

import java.io.File
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.tessera.Amount
import uniffi.tessera.Holding
import uniffi.tessera.NfcChannel
import uniffi.tessera.NfcChannelException
import uniffi.tessera.NfcTransferException
import uniffi.tessera.NfcTransferStep
import uniffi.tessera.NodeEvent
import uniffi.tessera.OfferTerms
import uniffi.tessera.P2pException
import uniffi.tessera.P2pNode
import uniffi.tessera.RegistryException
import uniffi.tessera.Role
import uniffi.tessera.TransferEvent
import uniffi.tessera.TransferException
import uniffi.tessera.Wallet
import uniffi.tessera.WalletException
import uniffi.tessera.libraryVersion
import uniffi.tessera.loopbackNodeConfig

/** An NFC link between two phones in one process: the reader's transceive is the card's process_apdu. */
class TapChannel(private val card: Wallet) : NfcChannel {
    var commands = 0
        private set

    override fun transceive(command: ByteArray): ByteArray {
        commands++
        return card.processApdu(command)
    }
}

/** A phone that left the field, and one whose NFC stack has a bug. */
class LostChannel : NfcChannel {
    override fun transceive(command: ByteArray): ByteArray = throw NfcChannelException.TagLost("moved away")
}

class BuggyChannel : NfcChannel {
    override fun transceive(command: ByteArray): ByteArray = throw IllegalStateException("nfc stack bug 7")
}

/** SELECT of Tessera's AID: the cheapest real APDU. */
val SELECT: ByteArray = "00a4040008f054455353455241".hexToBytes() + byteArrayOf(0)

/** The node's tessera: URI once it listens on an address. */
suspend fun listeningUri(node: P2pNode): String {
    repeat(1000) {
        val uri = node.uri()
        if (uri.contains("a=")) return uri
        kotlinx.coroutines.delay(20)
    }
    throw Failure("node never listened")
}

class FlowTests(private val registry: Registry, private val event: String, private val gateDir: File) {
    val tests: List<Pair<String, () -> Unit>> = listOf(
        "a ticket sold for notes between two Kotlin wallets over libp2p, then reconciled" to ::saleOverLibp2p,
        "a declined offer over libp2p gives the ticket back" to ::declineOverLibp2p,
        "a gift of a note by NFC tap, phone to phone" to ::giftByTap,
        "a ticket presented to the gate engine through process_apdu" to ::gateAdmits,
        "registry refusals are RegistryException.Refused with the registry's code and text" to ::registryErrors,
        "transfer, p2p and NFC errors are typed exceptions with useful text" to ::flowErrors,
        "round-trip cost of a trivial FFI call and of process_apdu" to ::ffiCost,
    )

    private fun saleOverLibp2p(): Unit = Fixture(registry).use { f ->
        val alice = f.wallet("alice")
        val bob = f.wallet("bob")
        val ticket = stock(alice, registry, event, 0uL)
        runBlocking {
            bob.topUp(registry.url, "EUR", 2_500uL, "test-card-ok")
            bob.withdraw(registry.url, "EUR", 2_500uL)
        }
        val bobNotes = bob.notes().map { it.id }.toSet()
        runBlocking {
            withTimeout(60_000) {
                val seller = alice.startNode(loopbackNodeConfig())
                val buyer = bob.startNode(loopbackNodeConfig())
                // Wallet calls keep working while a node holds the wallet.
                assertEquals(ticket, alice.tickets().single().id, "listing through the node")
                assertThrows<P2pException.AlreadyRunning>("a second node") { runBlocking { alice.startNode(loopbackNodeConfig()) } }
                seller.dial(listeningUri(buyer))
                val exchange = seller.offer(buyer.peerId(), listOf(ticket), OfferTerms.Sale(Amount("EUR", 2_500uL)), 300uL)
                var sellerDone = false
                var buyerDone = false
                while (!buyerDone) {
                    when (val e = buyer.nextEvent()) {
                        is NodeEvent.OfferReceived -> {
                            assertEquals(exchange, e.offer.offerId, "the offer's id")
                            assertEquals(Amount("EUR", 2_500uL), e.offer.price, "the price on screen")
                            assertEquals(ticket, e.offer.items.single().id, "the ticket on screen")
                            buyer.accept(exchange)
                        }
                        is NodeEvent.Completed -> {
                            assertEquals(Role.RECEIVER, e.role, "buyer's side")
                            assertEquals(listOf(ticket), e.received, "the ticket came in")
                            buyerDone = true
                        }
                        is NodeEvent.Declined -> throw Failure("declined: ${e.reason}")
                        null -> throw Failure("buyer node stopped")
                        else -> {}
                    }
                }
                while (!sellerDone) {
                    when (val e = seller.nextEvent()) {
                        is NodeEvent.Completed -> {
                            assertEquals(Role.SENDER, e.role, "seller's side")
                            assertEquals(listOf(ticket), e.sent, "the ticket went out")
                            assertEquals(bobNotes, e.received.toSet(), "the payment came in")
                            sellerDone = true
                        }
                        null -> throw Failure("seller node stopped")
                        else -> {}
                    }
                }
                seller.stop()
                buyer.stop()
                seller.close()
                buyer.close()
            }
        }
        // The wallets are back in their objects: NFC and listing work directly again.
        assertEquals(ticket, bob.tickets().single().id, "bob holds the ticket")
        assertEquals(Holding.HELD, bob.tickets().single().holding, "held")
        assertEquals(2_500uL, alice.balance().single().available, "alice was paid")
        assertEquals(0, bob.notes().count { it.holding == Holding.HELD }, "bob paid everything")
        check(alice.transfers().any { it.isFinal && it.exchange.isNotEmpty() }) { "the exchange is listed as over" }

        // Reconcile: the registry learns the new holder and certifies it.
        val report = runBlocking { bob.sync(registry.url) }
        check(ticket in report.certified) { "bob's ticket certified by the registry: $report" }
        check(report.conflicts.isEmpty() && report.refused.isEmpty()) { "nothing refused: $report" }
        val sellerReport = runBlocking { alice.sync(registry.url) }
        check(sellerReport.conflicts.isEmpty()) { "no conflict for alice: $sellerReport" }
    }

    private fun declineOverLibp2p(): Unit = Fixture(registry).use { f ->
        val alice = f.wallet("alice")
        val bob = f.wallet("bob")
        val ticket = stock(alice, registry, event, 0uL)
        runBlocking {
            withTimeout(60_000) {
                val a = alice.startNode(loopbackNodeConfig())
                val b = bob.startNode(loopbackNodeConfig())
                a.dial(listeningUri(b))
                val exchange = a.offer(b.peerId(), listOf(ticket), OfferTerms.Gift, 300uL)
                assertEquals(Holding.PENDING_OUT, alice.tickets().single().holding, "pending out while offered")
                loop@ while (true) {
                    when (val e = b.nextEvent()) {
                        is NodeEvent.OfferReceived -> { b.decline(exchange, "no thanks"); break@loop }
                        null -> throw Failure("node stopped")
                        else -> {}
                    }
                }
                loop@ while (true) {
                    when (val e = a.nextEvent()) {
                        is NodeEvent.Declined -> { assertEquals("no thanks", e.reason, "the reason"); break@loop }
                        null -> throw Failure("node stopped")
                        else -> {}
                    }
                }
                // Dropping the node object stops it and gives the wallet back.
                a.close()
                b.stop()
                b.close()
            }
        }
        var held = false
        repeat(200) {
            if (!held) {
                held = try { alice.tickets().single().holding == Holding.HELD } catch (e: WalletException.Unavailable) { false }
                if (!held) Thread.sleep(10)
            }
        }
        check(held) { "the ticket is held again after the decline" }
        assertEquals(0, bob.tickets().size, "bob got nothing")
    }

    private fun giftByTap(): Unit = Fixture(registry).use { f ->
        val alice = f.wallet("alice")
        val bob = f.wallet("bob")
        runBlocking {
            alice.topUp(registry.url, "EUR", 500uL, "test-card-ok")
            alice.withdraw(registry.url, "EUR", 500uL)
        }
        val note = alice.notes().first()
        val offer = alice.offerTransfer(listOf(note.id), OfferTerms.Gift, 120uL)
        bob.acceptGifts(true) // bob opened the receive screen
        val channel = TapChannel(bob)
        val step = alice.nfcTransfer(channel, offer.step.send ?: throw Failure("no offer bytes"))
        check(step is NfcTransferStep.Done) { "one tap completes a gift: $step" }
        val done = (step as NfcTransferStep.Done).events.filterIsInstance<TransferEvent.Completed>().single()
        assertEquals(listOf(note.id), done.sent, "the note left alice")
        check(bob.takeTransferEvents().any { it is TransferEvent.Completed }) { "bob's screen hears the completion" }
        assertEquals(note.amount?.minor, bob.balance().single().available, "bob holds the note")
        check(channel.commands >= 3) { "select, offer, certificate: ${channel.commands} commands" }
    }

    private fun gateAdmits(): Unit = Fixture(registry).use { f ->
        val wallet = f.wallet("visitor")
        val ticket = stock(wallet, registry, event, 0uL)
        runBlocking { wallet.sync(registry.url) } // the gate's certification is in the trust list
        val result = registry.gateTap(gateDir) { apdu -> wallet.processApdu(apdu) }
        assertEquals("admitted $ticket", result, "the gate's decision")
        val answer = wallet.lastResult() ?: throw Failure("no result on the wallet's screen")
        check(answer.admitted && answer.refusal == null) { "admitted on the wallet's screen: $answer" }
        assertEquals(ticket, answer.instrumentId, "the ticket")
        assertEquals(0.toUShort(), wallet.tickets().single().usesLeft, "its one use is spent")
        val again = registry.gateTap(gateDir) { apdu -> wallet.processApdu(apdu) }
        check(!again.startsWith("admitted")) { "a used ticket is not admitted twice: $again" }
    }

    private fun registryErrors(): Unit = Fixture(registry).use { f ->
        val wallet = f.wallet("w")
        val declined = assertThrows<RegistryException.Refused>("a declined card") {
            runBlocking { wallet.topUp(registry.url, "EUR", 1_000uL, "decline-insufficient") }
        }
        check(declined.status.toInt() in 400..499 && declined.errorMessage.isNotBlank()) { "status and text: $declined" }
        val noEvent = assertThrows<RegistryException>("an unknown event") {
            runBlocking { wallet.buy(registry.url, "no-such-event", "A", null) }
        }
        check(noEvent.message?.contains("no-such-event") == true) { "names the event: ${noEvent.message}" }
        val poor = assertThrows<RegistryException.Refused>("buy without money") {
            runBlocking { wallet.buy(registry.url, event, "A", null) }
        }
        check(poor.code.isNotBlank() && poor.errorMessage.isNotBlank()) { "code and text: ${poor.code} ${poor.errorMessage}" }
        assertEquals(0, wallet.tickets().size, "nothing bought")
        assertThrows<RegistryException.Transport>("nobody listens") {
            runBlocking { wallet.sync("http://127.0.0.1:9") }
        }
        assertThrows<RegistryException.InvalidInput>("not a URL") { runBlocking { wallet.sync("ftp://x") } }
    }

    private fun flowErrors(): Unit = Fixture(registry).use { f ->
        val wallet = f.wallet("w")
        val other = f.wallet("other")
        val unknown = assertThrows<TransferException.Wallet>("offer an unknown instrument") {
            wallet.offerTransfer(listOf("00".repeat(16)), OfferTerms.Gift, 60uL)
        }
        check(unknown.errorMessage.contains("00".repeat(16))) { "names it: ${unknown.errorMessage}" }
        assertThrows<TransferException.BadOffer>("offer nothing") { wallet.offerTransfer(listOf(), OfferTerms.Gift, 60uL) }
        assertThrows<TransferException.InvalidInput>("id not hex") { wallet.offerTransfer(listOf("zz"), OfferTerms.Gift, 60uL) }
        assertThrows<TransferException.Decode>("garbage message") { wallet.handleTransfer(ByteArray(12) { 7 }) }
        assertThrows<TransferException.UnknownExchange>("accept what was never offered") {
            wallet.acceptOffer("11".repeat(16))
        }
        val lost = assertThrows<NfcTransferException.Channel>("the phone moved away") {
            wallet.nfcTransfer(LostChannel(), ByteArray(0))
        }
        check(lost.errorMessage.contains("moved away")) { "carries the app's text: ${lost.errorMessage}" }
        val buggy = assertThrows<NfcTransferException.Channel>("an undeclared exception in the channel") {
            wallet.nfcTransfer(BuggyChannel(), ByteArray(0))
        }
        check(buggy.errorMessage.contains("nfc stack bug 7")) { "carries the exception's text: ${buggy.errorMessage}" }
        // A card that is not a wallet in the field: a wallet with a node running answers 6985.
        runBlocking {
            val node = other.startNode(loopbackNodeConfig())
            assertEquals("6985", other.processApdu(SELECT).toHex(), "a wallet busy with its node refuses taps")
            val refused = assertThrows<NfcTransferException.Card>("the card refuses") {
                wallet.nfcTransfer(TapChannel(other), ByteArray(0))
            }
            check(refused.errorMessage.contains("6985")) { "says what the card answered: ${refused.errorMessage}" }
            assertThrows<P2pException.InvalidInput>("bad peer id") {
                runBlocking { node.offer("not-a-peer", listOf("00".repeat(16)), OfferTerms.Gift, 60uL) }
            }
            assertThrows<P2pException.InvalidInput>("bad uri") { runBlocking { node.dial("http://nope") } }
            node.stop()
            node.close()
        }
        assertEquals("9000", other.processApdu(SELECT).toHex().takeLast(4), "after stop, taps work again")
        assertEquals("6985", wallet.processApdu("80ff000000".hexToBytes()).toHex(), "a command before SELECT")
        check(wallet.processApdu(SELECT).toHex().endsWith("9000")) { "SELECT" }
        assertEquals("6d00", wallet.processApdu("80ff000000".hexToBytes()).toHex(), "an unknown instruction")
        assertEquals("6700", wallet.processApdu(byteArrayOf(1)).toHex().let { if (it.length == 4) "6700" else it },
            "garbage is a status word, never an exception")
    }

    /**
     * Cost per call of the cheapest exported calls and of process_apdu
     * against a plain Kotlin call, in thread CPU time (the shared CI
     * machine is loaded; wall time mostly measures waiting for a core).
     * Prints a table with ratios; never asserts on time.
     */
    private fun ffiCost(): Unit = Fixture(registry).use { f ->
        val wallet = f.wallet("w")
        val threads = java.lang.management.ManagementFactory.getThreadMXBean()
        fun measure(n: Int, block: () -> Unit): Double {
            repeat(n) { block() } // warm the JIT
            val start = threads.currentThreadCpuTime
            repeat(n) { block() }
            return (threads.currentThreadCpuTime - start).toDouble() / n
        }
        var sink = 0
        val baseline = measure(200_000) { sink += kotlinVersionString().length }
        val version = measure(20_000) { sink += libraryVersion().length }
        val account = measure(20_000) { sink += wallet.accountKey().length }
        val apdu = measure(20_000) { sink += wallet.processApdu(SELECT).size }
        val balance = measure(2_000) { sink += wallet.balance().size }
        println("ffi-cost: %-34s %12s %10s".format("call", "ns/call", "ratio"))
        println("ffi-cost: %-34s %12.1f %10s".format("kotlin baseline (build a string)", baseline, "1x"))
        for ((name, ns) in listOf(
            "libraryVersion()" to version,
            "wallet.accountKey()" to account,
            "wallet.processApdu(SELECT)" to apdu,
            "wallet.balance() (SQLite read)" to balance,
        )) {
            println("ffi-cost: %-34s %12.1f %9.0fx".format(name, ns, ns / baseline))
        }
        println("ffi-cost: processApdu(SELECT) / libraryVersion() = %.1fx".format(apdu / version))
        check(sink > 0) { "calls ran" }
    }
}

/** The baseline: a Kotlin call that builds a short string, like libraryVersion does. */
fun kotlinVersionString(): String = StringBuilder("0.1.").append(0).toString()
