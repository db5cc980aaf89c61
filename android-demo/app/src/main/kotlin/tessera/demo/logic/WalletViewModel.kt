// The demo app's logic: screen state and what the buttons do, in plain
// Kotlin over the Tessera bindings. No Android import here, so it compiles
// and is unit-tested on a JVM (scripts/test.d/60-kotlin.sh); the Android
// layer (activities, HostApduService, reader mode) only forwards to it.
package tessera.demo.logic

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import uniffi.tessera.Amount
import uniffi.tessera.Holding
import uniffi.tessera.NfcChannel
import uniffi.tessera.NfcTransferStep
import uniffi.tessera.NodeConfig
import uniffi.tessera.NodeEvent
import uniffi.tessera.OfferSummary
import uniffi.tessera.OfferTerms
import uniffi.tessera.P2pNode
import uniffi.tessera.Role
import uniffi.tessera.TransferEvent
import uniffi.tessera.Wallet

/** A line of the tickets screen. */
data class TicketRow(val id: String, val label: String, val usesLeft: Int, val pendingOut: Boolean)

/** The incoming-offer screen: what is offered, for how much, answer by when. */
data class IncomingOffer(
    val exchange: String,
    val items: List<String>,
    val price: String?,
    val expiresAt: ULong,
    /** Received by tap (answer is collected at the next tap) or over libp2p. */
    val byTap: Boolean,
)

/** A line of the transfer-progress screen. */
data class Progress(val exchange: String, val sending: Boolean, val state: String, val done: Boolean)

/** The gate's answer after a tap. */
data class GateAnswer(val admitted: Boolean, val text: String)

data class WalletScreenState(
    val tickets: List<TicketRow> = emptyList(),
    /** "25.00 EUR" per currency, plus what is pending out. */
    val balance: List<String> = emptyList(),
    val incoming: IncomingOffer? = null,
    val transfers: List<Progress> = emptyList(),
    val gate: GateAnswer? = null,
    /** Where this phone can be reached while online (for a QR code). */
    val uri: String? = null,
    /** The last failure, as a sentence for a snackbar. */
    val error: String? = null,
)

fun money(amount: Amount): String = "%d.%02d %s".format((amount.minor / 100uL).toLong(), (amount.minor % 100uL).toInt(), amount.currency)

class WalletViewModel(private val wallet: Wallet, private val registryUrl: String) {
    private val mutable = MutableStateFlow(WalletScreenState())
    val state: StateFlow<WalletScreenState> = mutable
    private var node: P2pNode? = null

    private fun update(change: (WalletScreenState) -> WalletScreenState) {
        mutable.value = change(mutable.value)
    }

    /**
     * Runs an action; a failure becomes the error line instead of a crash.
     * A user action that succeeds clears the line; a refresh leaves it.
     */
    private inline fun <T> attempt(clears: Boolean = true, action: () -> T): T? = try {
        action().also { if (clears) update { it.copy(error = null) } }
    } catch (e: Exception) {
        update { it.copy(error = e.message ?: e.toString()) }
        null
    }

    /** Re-reads tickets, balance and transfers from the wallet. */
    fun refresh() {
        attempt(clears = false) {
            val tickets = wallet.tickets().map {
                TicketRow(it.id, it.label, it.usesLeft.toInt(), it.holding == Holding.PENDING_OUT)
            }
            val balance = wallet.balance().filter { it.available + it.pendingOut > 0uL }.map { b ->
                val line = money(Amount(b.currency, b.available))
                if (b.pendingOut > 0uL) "$line (+${money(Amount(b.currency, b.pendingOut))} pending)" else line
            }
            val transfers = wallet.transfers().map {
                Progress(it.exchange, it.role == Role.SENDER, it.state, it.isFinal)
            }
            update { it.copy(tickets = tickets, balance = balance, transfers = transfers) }
        }
    }

    /** Held notes, to pick what to pay or give by tap. */
    fun noteIds(): List<String> = attempt(clears = false) { wallet.notes().filter { it.holding == Holding.HELD }.map { it.id } } ?: emptyList()

    suspend fun sync() {
        attempt { wallet.sync(registryUrl) }
        refresh()
    }

    /** Credits the account at the registry (the payment provider's token). */
    suspend fun topUp(minor: ULong, paymentToken: String) {
        attempt { wallet.topUp(registryUrl, "EUR", minor, paymentToken) }
        refresh()
    }

    /** Notes from the account, to pay offline. */
    suspend fun withdraw(minor: ULong) {
        attempt { wallet.withdraw(registryUrl, "EUR", minor) }
        refresh()
    }

    suspend fun buy(event: String, zone: String): String? {
        val id = attempt { wallet.buy(registryUrl, event, zone, null) }
        refresh()
        return id
    }

    // ---- over the internet (libp2p) ----------------------------------------

    /** Starts the node; the URI to show as a QR code. */
    suspend fun goOnline(config: NodeConfig): String? {
        if (node == null) node = attempt { wallet.startNode(config) }
        val uri = node?.let { n -> attempt { n.uri() } }
        update { it.copy(uri = uri) }
        return uri
    }

    suspend fun goOffline() {
        node?.let { n -> attempt { n.stop() }; n.close() }
        node = null
        update { it.copy(uri = null) }
        refresh()
    }

    /** Follows the node's events until it stops (run it in a coroutine while online). */
    suspend fun followEvents(until: (WalletScreenState) -> Boolean = { false }) {
        val n = node ?: return
        while (true) {
            val event = n.nextEvent() ?: return
            onNodeEvent(event)
            if (until(state.value)) return
        }
    }

    fun onNodeEvent(event: NodeEvent) {
        when (event) {
            is NodeEvent.OfferReceived -> update { it.copy(incoming = incoming(event.offer, byTap = false)) }
            is NodeEvent.Failed -> update { it.copy(error = event.reason) }
            is NodeEvent.Completed, is NodeEvent.Declined, is NodeEvent.Expired, is NodeEvent.Accepted -> refresh()
            else -> {}
        }
    }

    /** Sells (or gives, without a price) a ticket to the phone whose QR code was scanned. */
    suspend fun offerOnline(peerUri: String, ticketId: String, price: Amount?): String? {
        val n = node ?: return null.also { update { it.copy(error = "go online first") } }
        val exchange = attempt {
            n.dial(peerUri)
            val peer = peerUri.removePrefix("tessera:").substringBefore('?')
            n.offer(peer, listOf(ticketId), price?.let { OfferTerms.Sale(it) } ?: OfferTerms.Gift, 300uL)
        }
        refresh()
        return exchange
    }

    suspend fun acceptIncoming() = answer(accept = true)

    suspend fun declineIncoming() = answer(accept = false)

    private suspend fun answer(accept: Boolean) {
        val offer = state.value.incoming ?: return
        val n = node
        attempt {
            if (offer.byTap || n == null) {
                // By tap: the reply waits in the card for the sender's next tap.
                val step = if (accept) wallet.acceptOffer(offer.exchange) else wallet.declineOffer(offer.exchange, "declined")
                step.send?.let { wallet.queueTransferReply(it) }
            } else if (accept) {
                n.accept(offer.exchange)
            } else {
                n.decline(offer.exchange, "declined")
            }
        }
        update { it.copy(incoming = null) }
        refresh()
    }

    // ---- NFC ------------------------------------------------------------------

    /** HostApduService.processCommandApdu. */
    fun processApdu(apdu: ByteArray): ByteArray = wallet.processApdu(apdu)

    /** HostApduService.onDeactivated: show what the tap did (gate answer, offers, transfers). */
    fun onTapEnded() {
        wallet.deactivate()
        wallet.lastResult()?.let { r ->
            val text = if (r.admitted) "Welcome! ${r.usesLeft} use(s) left" else (r.refusal ?: "refused")
            update { it.copy(gate = GateAnswer(r.admitted, text)) }
        }
        for (event in wallet.takeTransferEvents()) {
            if (event is TransferEvent.OfferReceived) update { it.copy(incoming = incoming(event.offer, byTap = true)) }
        }
        refresh()
    }

    /** The receive screen is open: gifts by tap are taken at once. */
    fun receiveScreenOpen(open: Boolean) = wallet.acceptGifts(open)

    /** Reader mode found the other phone: offer [ids] as a gift by tap (or poll for its answer with no ids). */
    fun sendByTap(channel: NfcChannel, ids: List<String>): Boolean {
        val done = attempt {
            val message = if (ids.isEmpty()) ByteArray(0) else wallet.offerTransfer(ids, OfferTerms.Gift, 120uL).step.send ?: ByteArray(0)
            wallet.nfcTransfer(channel, message) is NfcTransferStep.Done
        } ?: false
        refresh()
        return done
    }

    private fun incoming(offer: OfferSummary, byTap: Boolean) = IncomingOffer(
        exchange = offer.offerId,
        items = offer.items.map { i -> i.amount?.let { "${i.label} (${money(it)})" } ?: i.label },
        price = offer.price?.let(::money),
        expiresAt = offer.expiresAt,
        byTap = byTap,
    )
}
