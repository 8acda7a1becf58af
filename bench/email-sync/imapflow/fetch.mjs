// Peer for the email sync benchmark: imapflow fetches every message's full source from
// INBOX, mailparser's simpleParser parses each one (fetch and parse only: nothing is
// stored). Prints one line of JSON: {"messages": n, "exists": m, "bytes": b}.
//
// Environment: IMAP_HOST (127.0.0.1), IMAP_PORT, IMAP_USER, IMAP_PASS, IMAP_FOLDER (INBOX).

import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';

const client = new ImapFlow({
    host: process.env.IMAP_HOST || '127.0.0.1',
    port: Number(process.env.IMAP_PORT),
    secure: false,
    doSTARTTLS: false,
    auth: { user: process.env.IMAP_USER, pass: process.env.IMAP_PASS },
    logger: false,
});

await client.connect();
const lock = await client.getMailboxLock(process.env.IMAP_FOLDER || 'INBOX');
let messages = 0;
let bytes = 0;
let exists = 0;
try {
    exists = client.mailbox.exists;
    for await (const msg of client.fetch('1:*', { uid: true, source: true })) {
        const parsed = await simpleParser(msg.source);
        if (!parsed) throw new Error(`message ${msg.seq}: no parse result`);
        messages += 1;
        bytes += msg.source.length;
    }
} finally {
    lock.release();
}
await client.logout();
console.log(JSON.stringify({ messages, exists, bytes }));
