// A real SMTP server for the end-to-end tests: Keyward sends to it over SMTP (lettre),
// and the tests read what arrived over HTTP: GET /messages → [{to, subject, text, html}].
// Ports: KEYWARD_E2E_SMTP_PORT (SMTP), KEYWARD_E2E_MAIL_API_PORT (HTTP), on 127.0.0.1.
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';
import http from 'node:http';

const smtpPort = Number(process.env.KEYWARD_E2E_SMTP_PORT ?? 2525);
const apiPort = Number(process.env.KEYWARD_E2E_MAIL_API_PORT ?? 2526);
const messages = [];

const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, session, callback) {
    simpleParser(stream)
      .then((mail) => {
        messages.push({
          to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          subject: mail.subject ?? '',
          text: mail.text ?? '',
          html: typeof mail.html === 'string' ? mail.html : '',
        });
        callback();
      })
      .catch(callback);
  },
});
smtp.listen(smtpPort, '127.0.0.1');

http
  .createServer((req, res) => {
    if (req.url === '/messages') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(messages));
    } else {
      res.writeHead(404).end();
    }
  })
  .listen(apiPort, '127.0.0.1', () => console.log(`smtp-catcher: smtp ${smtpPort}, api ${apiPort}`));
