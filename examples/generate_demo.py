"""Generate the demo workspace's data: a French mail-order company's exports.

Deterministic (one seeded numpy generator, no set or hash ordering), so that
running it again rewrites `examples/demo/` byte for byte. The three files are
deliberately in three export styles the `files` connector must read, and the
customers are drawn from behavioural archetypes so that the rule sets in
`segrules/` (profils-vpc, fidelite, rfm) give clear, plausible segments when run
with `--as-of 2026-12-01`.

    python examples/generate_demo.py [OUT_DIR]
"""

from __future__ import annotations

import csv
import io
import sys
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

SEED = 20261130
N_CONTACTS = 2250
PARIS = ZoneInfo("Europe/Paris")
START = datetime(2024, 12, 1)  # orders cover the two years ending 2026-11-30
DAYS = 730
AS_OF_T = 730.0  # 2026-12-01 00:00, in days since START

CONTACT_HEADERS = [
    "N° client",
    "Civilité",
    "Prénom",
    "Nom",
    "E-mail",
    "Abonné newsletter",
    "Date d'inscription",
    "Âge",
    "Sexe",
    "Ville",
    "Code postal",
    "Région",
    "Motivation",
    "Comportement",
    "Profil",
    "Tags",
]


def _words(text: str) -> list[str]:
    return text.split()


CATEGORIES = [
    "musique classique",
    "jazz",
    "variété française",
    "livres",
    "bricolage",
    "jardin",
    "cuisine",
    "high-tech",
    "jeux",
    "mode",
]
FEMALE = _words(
    "Marie Nathalie Isabelle Sylvie Catherine Françoise Christine Monique Valérie Sandrine "
    "Sophie Céline Julie Camille Léa Manon Chloé Émilie Aurélie Élodie Anne Martine Brigitte "
    "Hélène Agnès Laure Inès Zoé Claire Béatrice Jacqueline Danielle Josiane Maëlle Océane"
)
MALE = _words(
    "Jean Philippe Michel Alain Patrick Nicolas Christophe Pierre Christian Éric Frédéric "
    "Laurent Stéphane David Julien Thomas Sébastien Olivier Antoine Hugo Lucas Théo Maxime "
    "Bernard Gérard Daniel Jérôme François André René Yves Léo Mathis Gaël Loïc"
)
LAST = _words(
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Lefèvre "
    "Mercier Dupont Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc "
    "Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont Lopez "
    "Fontaine Chevalier Robin Masson Sanchez Gérard Nguyen Boyer Denis Lemaire Duval Joly "
    "Gautier Roger Roche Roy Noël Meyer Lucas Meunier Pérez Marchand Dufour Blanchard Barbier "
    "Brun Dumas Brunet Schmitt Leroux Colin Fernandez Renard Arnaud Rolland Caron Aubert "
    "Giraud Leclerc Vidal Bourgeois Renaud Lemoine Picard Gaillard Lacroix Fabre Dupuis "
    "Rodriguez Hubert Guillot Rivière Guillaume Adam Rey Moulin Berger Lecomte Ménard Fleury "
    "Deschamps Carpentier Benoît Maillard Aubry Vasseur Renault Jacquet Collet Prévost "
    "Poirier Charpentier Royer Huet Baron Dupuy Pons Carré Breton Rémy Schneider Perrot Marty"
)
LAST += ["Le Gall", "Da Silva", "Le Roux", "Saint-Martin"]
PACA, ARA, OCC = "Provence-Alpes-Côte d'Azur", "Auvergne-Rhône-Alpes", "Occitanie"
NA, GE, HDF, BZH = "Nouvelle-Aquitaine", "Grand Est", "Hauts-de-France", "Bretagne"
PDL, NOR, BFC, CVL = (
    "Pays de la Loire",
    "Normandie",
    "Bourgogne-Franche-Comté",
    "Centre-Val de Loire",
)
CITIES = [  # (city, postal code, region, weight)
    ("Paris", "75011", "Île-de-France", 14),
    ("Paris", "75015", "Île-de-France", 10),
    ("Paris", "75017", "Île-de-France", 7),
    ("Boulogne-Billancourt", "92100", "Île-de-France", 4),
    ("Versailles", "78000", "Île-de-France", 3),
    ("Marseille", "13008", PACA, 9),
    ("Lyon", "69003", ARA, 9),
    ("Toulouse", "31000", OCC, 8),
    ("Nice", "06000", PACA, 6),
    ("Nantes", "44000", PDL, 6),
    ("Montpellier", "34000", OCC, 5),
    ("Strasbourg", "67000", GE, 5),
    ("Bordeaux", "33000", NA, 5),
    ("Lille", "59000", HDF, 5),
    ("Rennes", "35000", BZH, 4),
    ("Reims", "51100", GE, 3),
    ("Toulon", "83000", PACA, 3),
    ("Saint-Étienne", "42000", ARA, 3),
    ("Le Havre", "76600", NOR, 3),
    ("Grenoble", "38000", ARA, 3),
    ("Dijon", "21000", BFC, 3),
    ("Angers", "49000", PDL, 3),
    ("Nîmes", "30000", OCC, 3),
    ("Clermont-Ferrand", "63000", ARA, 3),
    ("Aix-en-Provence", "13100", PACA, 3),
    ("Brest", "29200", BZH, 2),
    ("Tours", "37000", CVL, 3),
    ("Amiens", "80000", HDF, 2),
    ("Limoges", "87000", NA, 2),
    ("Annecy", "74000", ARA, 2),
    ("Perpignan", "66000", OCC, 2),
    ("Metz", "57000", GE, 2),
    ("Besançon", "25000", BFC, 2),
    ("Orléans", "45000", CVL, 2),
    ("Rouen", "76000", NOR, 2),
    ("Caen", "14000", NOR, 2),
    ("Nancy", "54000", GE, 2),
    ("Avignon", "84000", PACA, 2),
    ("Poitiers", "86000", NA, 2),
    ("La Rochelle", "17000", NA, 2),
    ("Pau", "64000", NA, 2),
    ("Bourg-en-Bresse", "01000", ARA, 1),
    ("Laon", "02000", HDF, 1),
    ("Antibes", "06600", PACA, 2),
    ("Cannes", "06400", PACA, 2),
    ("Ajaccio", "20000", "Corse", 1),
    ("Troyes", "10000", GE, 1),
    ("Quimper", "29000", BZH, 1),
    ("Vannes", "56000", BZH, 1),
    ("Colmar", "68000", GE, 1),
    ("Chambéry", "73000", ARA, 1),
]
DOMAINS = [
    "gmail.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "sfr.fr",
    "wanadoo.fr",
    "hotmail.fr",
    "yahoo.fr",
    "outlook.fr",
]
DOMAIN_P = np.array([30, 18, 12, 8, 7, 7, 7, 6, 5]) / 100
# archetype -> share of contacts, and its psychographic leanings
ARCHETYPES = {
    "fonceur": 0.20,
    "decouvreur": 0.22,
    "prudent": 0.25,
    "zen": 0.22,
    "nouveau": 0.03,
    "sans_commande": 0.08,
}
LEANINGS = {
    "fonceur": (["individualiste", "reconnaissance sociale"], ["zappeur", "exigeant"], ["branché"]),
    "decouvreur": (["reconnaissance sociale", "empathique"], ["zappeur", "tolérant"], ["curieux"]),
    "prudent": (["neutre", "individualiste"], ["exigeant", "fidèle"], ["classique"]),
    "zen": (["empathique", "neutre"], ["fidèle", "tolérant"], ["rêveur", "classique"]),
}
MOTIVATIONS = ["individualiste", "reconnaissance sociale", "empathique", "neutre"]
BEHAVIOURS = ["zappeur", "exigeant", "fidèle", "tolérant"]
PROFILES = ["branché", "rêveur", "classique", "curieux"]
CAMPAIGNS = [  # (id, local send time)
    ("2026-01-soldes", datetime(2026, 1, 13, 9)),
    ("2026-02-valentin", datetime(2026, 2, 3, 9)),
    ("2026-03-printemps", datetime(2026, 3, 17, 9)),
    ("2026-05-meres", datetime(2026, 5, 12, 9)),
    ("2026-06-ete", datetime(2026, 6, 23, 9)),
    ("2026-09-rentree", datetime(2026, 9, 8, 9)),
    ("2026-10-automne", datetime(2026, 10, 13, 9)),
    ("2026-11-black-friday", datetime(2026, 11, 24, 9)),
]
OPEN_P = {
    "fonceur": 0.55,
    "decouvreur": 0.45,
    "prudent": 0.30,
    "zen": 0.20,
    "nouveau": 0.5,
    "sans_commande": 0.12,
}


def ascii_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


class Demo:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = np.random.default_rng(seed)
        self.contacts: list[dict[str, str]] = []
        self.orders: list[tuple[float, str, float, str, int | None]] = []  # t, id, €, cat, note
        self.kinds: list[str] = []

    # -- people ----------------------------------------------------------------------------
    def person(self, i: int, kind: str) -> dict[str, str]:
        rng = self.rng
        female = rng.random() < 0.56
        first = str(rng.choice(FEMALE if female else MALE))
        last = str(rng.choice(LAST))
        city = CITIES[rng.choice(len(CITIES), p=_weights(CITIES))]
        lean = LEANINGS.get(kind)

        def pick(options: list[str], favoured: list[str] | None) -> str:
            if favoured and rng.random() < 0.6:
                return str(rng.choice(favoured))
            return str(rng.choice(options))

        local = ascii_fold(f"{first}.{last}").replace(" ", "").replace("'", "")
        if rng.random() < 0.45:
            local += str(rng.integers(1, 99))
        age_mu = {"fonceur": 42, "prudent": 58, "zen": 55, "decouvreur": 38}.get(kind, 45)
        return {
            "id": f"{i:05d}",
            "civ": "Mme" if female else "M.",
            "first": first,
            "last": last,
            "email": f"{local}@{rng.choice(DOMAINS, p=DOMAIN_P)}",
            "sub": "oui",
            "age": str(int(np.clip(rng.normal(age_mu, 13), 18, 85))),
            "sex": "F" if female else "M",
            "city": city[0],
            "cp": city[1],
            "region": city[2],
            "motivation": pick(MOTIVATIONS, lean[0] if lean else None),
            "behaviour": pick(BEHAVIOURS, lean[1] if lean else None),
            "profile": pick(PROFILES, lean[2] if lean else None),
            "tags": "",
        }

    # -- orders ----------------------------------------------------------------------------
    def buy(
        self,
        cid: str,
        times: np.ndarray,
        amounts: np.ndarray,
        cats: list[str],
        rate_p: float = 0.38,
        ratings: tuple[float, ...] = (0.07, 0.08, 0.15, 0.35, 0.35),
    ) -> None:
        for t, a, c in zip(times, amounts, cats, strict=True):
            note = int(self.rng.choice(5, p=ratings)) + 1 if self.rng.random() < rate_p else None
            self.orders.append((float(t), cid, round(float(a), 2), c, note))

    def times(self, n: int, lo: float, hi: float) -> np.ndarray:
        """Order instants in days since START, busier in November-December (gifts)."""
        t = self.rng.uniform(lo, hi, size=max(n * 3, 3))
        month = np.array([(START + timedelta(days=float(x))).month for x in t])
        keep = self.rng.random(len(t)) < np.where(np.isin(month, [11, 12]), 1.0, 0.6)
        t = t[keep][:n]
        while len(t) < n:
            t = np.append(t, self.rng.uniform(lo, hi))
        return np.sort(t)

    def categories(self, n: int, k: int, spread: float = 0.0) -> list[str]:
        """n order categories among k favourite ones, each favourite at least once if n >= k;
        ``spread`` is the chance of an order outside the favourites."""
        own = [str(x) for x in self.rng.choice(CATEGORIES, size=k, replace=False)]
        cats = [own[j % k] for j in self.rng.permutation(n)]
        return [str(self.rng.choice(CATEGORIES)) if self.rng.random() < spread else c for c in cats]

    def amounts(self, n: int, median: float, sigma: float, lo: float, hi: float) -> np.ndarray:
        return np.clip(self.rng.lognormal(np.log(median), sigma, n), lo, hi)

    def customer(self, c: dict[str, str], kind: str) -> float | None:
        """Draw this customer's orders; return the first order instant (days) or None."""
        rng, cid = self.rng, c["id"]
        declining = rng.random() < 0.25
        if kind == "fonceur":
            vip = rng.random() < 0.12
            amb = not vip and rng.random() < 0.3
            old_lo, old_hi = (365, 548) if declining else (0, 640)
            n_old = int(rng.poisson(5 if declining else 6)) + 4
            n_new = 3 + int(rng.poisson(0.6 if declining else 1.5))
            t = np.concatenate([self.times(n_old, old_lo, old_hi), self.times(n_new, 645, 729.9)])
            med = 260 if vip else 115
            a = self.amounts(len(t), med, 0.35, 50, 1400)
            cats = self.categories(len(t), int(rng.integers(1, 4)), spread=0.15)
            if amb:
                self.buy(cid, t, a, cats, 0.7, (0, 0, 0, 0.15, 0.85))
            else:
                self.buy(cid, t, a, cats)
            if vip and rng.random() < 0.25:
                c["tags"] = "vip"
        elif kind == "decouvreur":
            n_old, n_year = int(rng.poisson(4)), 5 + int(rng.poisson(3))
            year = (
                np.concatenate([self.times(n_year - 1, 365, 548), self.times(1, 650, 729.9)])
                if declining
                else self.times(n_year, 365, 729.9)
            )
            t_old = self.times(n_old, 0, 365)
            k = int(rng.integers(4, min(7, n_year) + 1))
            cats = self.categories(n_old, 2) + self.categories(n_year, k)
            t = np.concatenate([t_old, year])  # the last year holds >= 4 categories
            self.buy(cid, t, self.amounts(len(t), 58, 0.3, 20, 150), cats)
        elif kind in ("prudent", "zen"):
            n = 1 + int(rng.poisson(3.5 if kind == "prudent" else 2.0))
            last = rng.random()
            hi = 540.0 if last < 0.28 else (635.0 if last < 0.48 else 729.9)
            lo = float(rng.uniform(0, hi - 60))
            t = self.times(n, lo, hi)
            if hi == 635.0:
                t[-1] = rng.uniform(560, 635)
                t.sort()
            if kind == "prudent":
                a = self.amounts(n, 22, 0.35, 6, 39)
            else:
                a = self.amounts(n, 55, 0.3, 41, 79)
            self.buy(cid, t, a, self.categories(n, int(rng.integers(1, 3))))
        elif kind == "nouveau":
            n = int(rng.integers(1, 3))
            t = self.times(n, 612, 729.9)
            a = self.amounts(n, 52, 0.25, 41, 79)
            start = len(self.orders)
            self.buy(cid, t, a, self.categories(n, n), 0.3)
            t0, _, a0, c0, _ = self.orders[start]
            self.orders[start] = (t0, cid, a0, c0, 5)
        else:
            return None
        return float(t.min())

    # -- the whole base --------------------------------------------------------------------
    def build(self) -> None:
        rng = self.rng
        names = list(ARCHETYPES)
        kinds = rng.choice(names, size=N_CONTACTS, p=[ARCHETYPES[k] for k in names])
        for i, kind in enumerate(kinds, start=1):
            kind = str(kind)
            c = self.person(i, kind)
            first = self.customer(c, kind)
            if first is None:
                joined = START - timedelta(days=float(rng.uniform(0, 2400))) + timedelta(days=700)
            elif kind == "nouveau":
                joined = START + timedelta(days=first - float(rng.uniform(0, 10)))
            else:
                joined = START + timedelta(days=first - float(rng.uniform(1, 900)))
            c["joined"] = joined.strftime("%d/%m/%Y")
            if rng.random() < (0.05 if kind in ("fonceur", "decouvreur") else 0.085):
                c["sub"] = "non"
            self.contacts.append(c)
            self.kinds.append(kind)
        self.mess()

    def mess(self) -> None:
        """Harmless mess a real export has: upper-case e-mails, stray spaces, no e-mail."""
        rng = self.rng
        for c in self.contacts:
            r = rng.random()
            if r < 0.03:
                c["email"] = c["email"].upper()
            elif r < 0.045:
                c["city"] = f" {c['city']}"
            elif r < 0.06:
                c["last"] = f"{c['last']} "
            elif r < 0.065:
                c["email"] = ""
            elif r < 0.07:
                c["sub"] = "Oui" if c["sub"] == "oui" else "NON"
        for j in rng.choice(len(self.contacts), size=5, replace=False):
            if not self.contacts[j]["tags"]:
                self.contacts[j]["tags"] = "salon 2025"

    # -- files -----------------------------------------------------------------------------
    def write(self, out: Path) -> dict[str, object]:
        out.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
        w.writerow(CONTACT_HEADERS)
        keys = "id civ first last email sub joined age sex city cp region motivation behaviour"
        for n, c in enumerate(self.contacts):
            if n in (700, 1500):
                buf.write("\r\n")  # two blank lines, as when someone deleted rows in Excel
            w.writerow([c[k] for k in keys.split()] + [c["profile"], c["tags"]])
        (out / "contacts.csv").write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))

        self.orders.sort(key=lambda o: (o[0], o[1]))
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
        w.writerow(["N° commande", "N° client", "Date", "Montant", "Catégorie", "Note"])
        bad_lines = []
        feb = [
            j
            for j, o in enumerate(self.orders)
            if _local(o[0]).month == 2 and _local(o[0]).year == 2026
        ]
        broken = {feb[len(feb) // 3]: "31", feb[2 * len(feb) // 3]: "30"}
        for j, (t, cid, amount, cat, note) in enumerate(self.orders):
            when = _local(t).strftime("%d/%m/%Y %H:%M")
            if j in broken:
                when = broken[j] + when[2:]
                bad_lines.append(j + 2)
            euros = f"{amount:,.2f}".replace(",", "\u00a0").replace(".", ",")
            if self.rng.random() < 0.01:
                euros += " €"
            w.writerow([f"{100001 + j}", cid, when, euros, cat, "" if note is None else note])
        (out / "orders.csv").write_bytes(buf.getvalue().encode("cp1252"))

        events = self.events()
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=",", lineterminator="\n")
        w.writerow(["contact_id", "campaign_id", "event", "at"])
        w.writerows(events)
        (out / "events.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")
        return {
            "contacts": len(self.contacts),
            "orders": len(self.orders),
            "events": len(events),
            "bad_order_lines": bad_lines,
        }

    def events(self) -> list[tuple[str, str, str, str]]:
        """Sends, opens, clicks for the 2026 campaigns; unsubscribes and bounces end a contact's
        mailings. Contacts who left before 2026 get nothing."""
        rng = self.rng
        rows: list[tuple[datetime, str, str, str]] = []
        people = []
        for c, kind in zip(self.contacts, self.kinds, strict=True):
            if not c["email"].strip():
                continue
            left = bounce = None
            if c["sub"].lower() == "non":
                if rng.random() > 0.6:
                    continue  # unsubscribed before 2026
                left = int(rng.integers(0, len(CAMPAIGNS)))
            elif rng.random() < 0.012:
                bounce = int(rng.integers(0, len(CAMPAIGNS)))
            people.append((c["id"], kind, left, bounce))
        for n, (camp, local) in enumerate(CAMPAIGNS):
            sent_at = local.replace(tzinfo=PARIS).astimezone(ZoneInfo("UTC"))
            share = float(rng.uniform(0.45, 0.85))  # campaigns target part of the base
            for cid, kind, left, bounce in people:
                end = left if left is not None else bounce
                if end is not None and n > end:
                    continue
                if n != end and rng.random() > share:
                    continue
                at = sent_at + timedelta(seconds=float(rng.uniform(0, 900)))
                rows.append((at, cid, camp, "sent"))
                if n == bounce:
                    rows.append((at + timedelta(seconds=4), cid, camp, "bounce"))
                    continue
                if n == left or rng.random() < OPEN_P[kind]:
                    at += timedelta(hours=float(rng.exponential(9)))
                    rows.append((at, cid, camp, "open"))
                    if rng.random() < 0.3:
                        click = at + timedelta(minutes=float(rng.exponential(15)))
                        rows.append((click, cid, camp, "click"))
                    if n == left:
                        rows.append((at + timedelta(minutes=2), cid, camp, "unsubscribe"))
        rows.sort()
        return [(cid, camp, ev, at.strftime("%Y-%m-%dT%H:%M:%SZ")) for at, cid, camp, ev in rows]


def _weights(cities: list[tuple[str, str, str, int]]) -> np.ndarray:
    w = np.array([c[3] for c in cities], dtype=float)
    return w / w.sum()


def _local(t: float) -> datetime:
    """Days since START to a wall-clock time between 7:00 and 23:00, as an export shows it."""
    day = START + timedelta(days=int(t))
    return day + timedelta(hours=7, minutes=int((t % 1) * 16 * 60))


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent / "demo"
    demo = Demo()
    demo.build()
    figures = demo.write(out)
    for key, value in figures.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main(sys.argv)
