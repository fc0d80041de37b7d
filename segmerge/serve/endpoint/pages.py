"""The pages the unsubscribe endpoint answers with (in French, the shop's language).

Every page is static text: nothing from the request is echoed except, in the
confirmation form, the request's own path (HTML-escaped), so a crafted link
cannot inject markup.
"""

from __future__ import annotations

import html

_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
line-height:1.5}}button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def page(title: str, body: str) -> bytes:
    return _PAGE.format(title=html.escape(title), body=body).encode("utf-8")


_CONFIRM = page(
    "Se désabonner",
    "<p>Vous ne souhaitez plus recevoir nos messages&nbsp;?"
    " Confirmez ci-dessous&nbsp;: votre adresse sera retirée"
    " immédiatement de nos envois.</p>"
    '<form method="post" action="\0">'
    '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
    '<button type="submit">Me désabonner</button></form>',
).split(b"\0")


def confirm(path: str) -> bytes:
    """The GET page: a button that POSTs, since a GET (a mail scanner) must change nothing.
    Built once; only the escaped action differs per request."""
    return _CONFIRM[0] + html.escape(path, quote=True).encode("utf-8") + _CONFIRM[1]


DONE = page(
    "Désabonnement confirmé",
    "<p>C'est fait&nbsp;: vous ne recevrez plus nos messages à cette adresse.</p>",
)
TEST = page(
    "Message de test",
    "<p>Ce lien vient d'un message de test&nbsp;: rien n'a été enregistré,"
    " aucune adresse n'a été désabonnée.</p>",
)
FORGED_GET = page("Lien non valide", "<p>Ce lien de désabonnement n'est pas valide.</p>")
FORGED_POST = page(
    "Lien non valide",
    "<p>Ce lien de désabonnement n'est pas valide&nbsp;: rien n'a été enregistré.</p>",
)
NOT_FOUND = page("Page introuvable", "<p>Cette adresse n'existe pas.</p>")
INCOMPLETE = page(
    "Lien incomplet",
    "<p>Ce lien de désabonnement est incomplet. Copiez-le en entier depuis le message reçu.</p>",
)
BAD_REQUEST = page("Requête refusée", "<p>Requête mal formée.</p>")
NOT_ONE_CLICK = page("Requête refusée", "<p>Requête de désabonnement incomplète.</p>")
TOO_LARGE = page("Requête refusée", "<p>Requête trop volumineuse.</p>")
TIMEOUT = page("Délai dépassé", "<p>La requête est arrivée trop lentement.</p>")
METHOD = page("Méthode refusée", "<p>Seuls GET et POST sont acceptés ici.</p>")
BUSY = page(
    "Réessayez plus tard",
    "<p>Le service est très sollicité. Merci de réessayer dans quelques instants.</p>",
)
NOT_RECORDED = page(
    "Réessayez plus tard",
    "<p>Votre demande n'a pas pu être enregistrée. Merci de réessayer dans quelques minutes.</p>",
)
