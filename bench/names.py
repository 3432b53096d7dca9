"""Synthetic but realistic-looking names for the bench data set (no real person's data).

Common surnames and given names of several origins, accents and compound names included, so the
folded-name index and the search plans see the shapes a hospital registry holds.
"""

from __future__ import annotations

import random

SURNAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim
Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo
Sanders Patel Myers Long Ross Foster Jimenez Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker
Schulz Hoffmann Dubois Lefèvre Moreau Laurent Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci
Silva Santos Oliveira Souza Pereira Costa Rodrigues Almeida Nascimento Lima Araújo Fernandes Carvalho
Kowalski Nowak Wiśniewski Wójcik Novák Svoboda Dvořák Horváth Nagy Tóth Szabó Yılmaz Kaya Demir Şahin
Ivanov Petrov Sidorov Popescu Ionescu Papadopoulos O'Brien O'Connor McCarthy MacDonald Murray Byrne
Andersson Johansson Karlsson Nilsson Hansen Jensen Nielsen Larsen Virtanen Korhonen Tanaka Suzuki Takahashi
Watanabe Yamamoto Nakamura Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Singh Kumar Sharma Gupta Khan
Ali Ahmed Hassan Hussein Ibrahim Mahmoud Cohen Levi Mizrahi Okafor Okeke Adeyemi Mensah Boateng Kamau
Otieno Mwangi Núñez Peña Muñoz Báez Vásquez Domínguez Gil Méndez Ibáñez Sáez Calderón Delgado Vega
""".split()

GIVEN = """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph
Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Margaret Mark Sandra
Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian
Dorothy George Melissa Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan
Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela
José María Juan Ana Luis Carmen Carlos Lucía Javier Sofía Miguel Isabel Jesús Elena Ángel Marta Raúl Pilar
François Amélie Jérôme Hélène Chloé Léa Zoë Noël Björn Åsa Jürgen Jörg Søren Håkon Łukasz Małgorzata
Giulia Francesco Alessandro Chiara Matteo Giorgia Mohammed Fatima Omar Aisha Yusuf Layla Hiroshi Yuki
Wei Mei Jun Ling Priya Arjun Ananya Rahul Chidi Ngozi Kwame Ama Oluwaseun Tunde Thandiwe Sipho Olga Ivan
Dmitri Natasha Katarzyna Piotr Zsófia Tamás Siobhán Seán Niamh Aoife Eoin Jean-Pierre Marie-Claire
Anne-Sophie José-Luis
""".split()

_SYLLABLES = "ka lo mi ra ne ta vo si de bu ar el on is ul ma ri co la fe go hu ji ke ly".split()


def _synthetic(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def family_names(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct family names: common ones first, then compound and synthetic ones."""
    rng = random.Random(seed)
    out = list(dict.fromkeys(SURNAMES))[:count]
    seen = set(out)
    while len(out) < count:
        roll = rng.random()
        if roll < 0.25:
            name = f"{rng.choice(SURNAMES)}-{rng.choice(SURNAMES)}"
        elif roll < 0.35:
            name = f"{rng.choice(['De la', 'Van der', 'Da', 'Di', 'Von'])} {rng.choice(SURNAMES)}"
        else:
            name = _synthetic(rng)
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def given_names(rng: random.Random) -> list[str]:
    first = rng.choice(GIVEN)
    return [first, rng.choice(GIVEN)] if rng.random() < 0.3 else [first]
