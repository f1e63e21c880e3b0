'use strict';
// Asking VS Code for the GitHub account it already has, for one Presence
// sign-in. Called only after the person chose it (in the tray, or with
// "Presence: Sign in"); VS Code then asks them to allow it. The token is
// handed to the desktop over the same-user bridge and forgotten here: it is
// never stored, logged or shown.

const PROVIDER = 'github';
// Read-only profile: all the presence server needs is who the person is.
const SCOPES = Object.freeze(['read:user']);

async function githubSession(vscode) {
  let session;
  try {
    session = await vscode.authentication.getSession(PROVIDER, [...SCOPES], { createIfNone: true });
  } catch (err) {
    // Cancelled by the person, or no GitHub provider; the reason stays here.
    return { error: 'cancelled' };
  }
  if (!session || typeof session.accessToken !== 'string' || !session.accessToken) {
    return { error: 'no_session' };
  }
  return { token: session.accessToken, account: session.account ? session.account.label : '' };
}

module.exports = { githubSession, SCOPES, PROVIDER };
