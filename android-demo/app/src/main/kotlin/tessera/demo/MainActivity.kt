// The screens: tickets and balance, incoming offer (accept/decline), transfer
// progress, the gate's answer. Reader mode sends the selected ticket to a
// phone held against this one. All state and actions are WalletViewModel's.
package tessera.demo

import android.nfc.NfcAdapter
import android.nfc.Tag
import android.nfc.TagLostException
import android.nfc.tech.IsoDep
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import java.io.IOException
import kotlinx.coroutines.launch
import tessera.demo.logic.WalletViewModel
import uniffi.tessera.NfcChannel
import uniffi.tessera.NfcChannelException

/** IsoDep as the bindings' NfcChannel. */
class IsoDepChannel(private val isoDep: IsoDep) : NfcChannel {
    override fun transceive(command: ByteArray): ByteArray = try {
        isoDep.transceive(command)
    } catch (e: TagLostException) {
        throw NfcChannelException.TagLost(e.message ?: "tag lost")
    } catch (e: IOException) {
        throw NfcChannelException.Io(e.message ?: e.toString())
    }
}

class MainActivity : ComponentActivity(), NfcAdapter.ReaderCallback {
    private val model: WalletViewModel get() = (application as TesseraApp).model
    /** What the user picked to send by tap; reader mode is on only while set. */
    @Volatile private var sending: List<String>? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        model.refresh()
        setContent { MaterialTheme { Screens(model) } }
    }

    fun sendByTap(ids: List<String>) {
        sending = ids
        NfcAdapter.getDefaultAdapter(this)?.enableReaderMode(
            this, this, NfcAdapter.FLAG_READER_NFC_A or NfcAdapter.FLAG_READER_SKIP_NDEF_CHECK, null,
        )
    }

    override fun onTagDiscovered(tag: Tag) {
        val ids = sending ?: return
        val isoDep = IsoDep.get(tag) ?: return
        isoDep.use {
            it.connect()
            it.timeout = 2_000
            if (model.sendByTap(IsoDepChannel(it), ids)) {
                sending = null
                NfcAdapter.getDefaultAdapter(this)?.disableReaderMode(this)
            }
        }
    }

    @androidx.compose.runtime.Composable
    private fun Screens(model: WalletViewModel) {
        val state by model.state.collectAsState()
        val scope = rememberCoroutineScope()
        Column(Modifier.padding(16.dp)) {
            state.error?.let { Text("⚠ $it", color = MaterialTheme.colorScheme.error) }
            state.gate?.let { Text(if (it.admitted) "✔ ${it.text}" else "✘ ${it.text}", style = MaterialTheme.typography.headlineMedium) }
            state.incoming?.let { offer ->
                Text("Offer: ${offer.items.joinToString()} ${offer.price?.let { "for $it" } ?: "(gift)"}")
                Row {
                    Button(onClick = { scope.launch { model.acceptIncoming() } }) { Text("Accept") }
                    Button(onClick = { scope.launch { model.declineIncoming() } }) { Text("Decline") }
                }
            }
            Text("Balance: ${state.balance.joinToString().ifEmpty { "0" }}")
            state.tickets.forEach { t ->
                Row {
                    Text("${t.label} · ${t.usesLeft} use(s)${if (t.pendingOut) " · sending…" else ""}")
                    Button(onClick = { sendByTap(listOf(t.id)) }) { Text("Give by tap") }
                }
            }
            state.transfers.forEach { Text("${if (it.sending) "→" else "←"} ${it.exchange.take(8)} ${it.state}") }
            Row {
                Button(onClick = { scope.launch { model.sync() } }) { Text("Sync") }
                Button(onClick = { scope.launch { model.goOnline(uniffi.tessera.defaultNodeConfig()); model.followEvents() } }) {
                    Text(if (state.uri == null) "Go online" else "Online")
                }
            }
            state.uri?.let { Text(it, style = MaterialTheme.typography.bodySmall) }
        }
    }
}
