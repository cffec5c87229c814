"""The MovieLens family (1M, 10M, 20M/25M/32M CSV with the tag genome, 100K's user fields) on fixtures written by
the tests byte for byte in each release's own format: `::` separators, latin-1 titles with accents, CRLF line ends,
quoted commas in CSV titles, a byte-order mark, a title that itself holds `::`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.movielens import MovieLensCSV, MovieLensLatest
from lmrec.data.sources.movielens_100k import MovieLens100K
from lmrec.data.sources.movielens_dat import AGES, OCCUPATIONS, MovieLens1M, MovieLens10M
from lmrec.data.texts import validate_template
from lmrec.errors import ConfigError
from tests.helpers import compose_train, prepared_data

# (MovieID, Title, Genres) as in ml-1m's movies.dat; 3 has an accent (latin-1 byte 0xE9), 4 holds "::" itself.
MOVIES_1M = [
    (1, "Toy Story (1995)", "Animation|Children's|Comedy"),
    (2, "Jumanji (1995)", "Adventure|Children's|Fantasy"),
    (3, "Misérables, Les (1995)", "Drama|Musical"),
    (4, "Star Trek:: The Return (2000)", "Sci-Fi"),
]
# (UserID, Gender, Age code, Occupation code, Zip-code)
USERS_1M = [(1, "F", "1", "10", "48067"), (2, "M", "56", "16", "70072"), (3, "M", "25", "4", "98107-2117")]
RATINGS_1M = [
    (1, 1, 5, 978300760),
    (1, 3, 3, 978302109),
    (2, 2, 4, 978298413),
    (2, 4, 1, 978299026),
    (3, 1, 2, 978300275),  # a plausible time: before 1995 is refused (tests/data/test_movielens_timestamps.py)
]


def dat(rows: list[tuple], encoding: str = "latin-1", newline: str = "\n") -> bytes:
    return "".join("::".join(map(str, row)) + newline for row in rows).encode(encoding)


def write_ml1m(root: Path, newline: str = "\n", ratings: list[tuple] | None = None, users: list | None = None) -> Path:
    """The three files of ml-1m, as distributed (latin-1, `::`, no header)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "movies.dat").write_bytes(dat(MOVIES_1M, newline=newline))
    (root / "users.dat").write_bytes(dat(users or USERS_1M, newline=newline))
    (root / "ratings.dat").write_bytes(dat(ratings or RATINGS_1M, newline=newline))
    return root


def test_ml1m_files_become_the_contract_tables(tmp_path):
    tables = MovieLens1M(write_ml1m(tmp_path)).read()
    expected = [(u, i, float(r), t) for u, i, r, t in RATINGS_1M]
    assert list(tables.interactions.itertuples(index=False, name=None)) == expected
    assert [str(t) for t in tables.interactions.dtypes] == ["int64", "int64", "float32", "int64"]
    assert tables.items.to_dict("records") == [
        {"item_id": 1, "title": "Toy Story (1995)", "genres": "Animation, Children's, Comedy"},
        {"item_id": 2, "title": "Jumanji (1995)", "genres": "Adventure, Children's, Fantasy"},
        {"item_id": 3, "title": "Misérables, Les (1995)", "genres": "Drama, Musical"},
        {"item_id": 4, "title": "Star Trek:: The Return (2000)", "genres": "Sci-Fi"},
    ]
    assert tables.users.to_dict("records") == [
        {"user_id": 1, "age": "Under 18", "gender": "F", "occupation": "K-12 student", "zip_code": "48067"},
        {"user_id": 2, "age": "56+", "gender": "M", "occupation": "self-employed", "zip_code": "70072"},
        {"user_id": 3, "age": "25-34", "gender": "M", "occupation": "college/grad student", "zip_code": "98107-2117"},
    ]
    assert len(OCCUPATIONS) == 21 and OCCUPATIONS[0] == "other" and OCCUPATIONS[20] == "writer"
    assert list(AGES.values()) == ["Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]


def test_crlf_files_read_the_same(tmp_path):
    lf = MovieLens1M(write_ml1m(tmp_path / "lf")).read()
    crlf = MovieLens1M(write_ml1m(tmp_path / "crlf", newline="\r\n")).read()
    assert crlf.items.equals(lf.items) and crlf.users.equals(lf.users)
    assert crlf.interactions.equals(lf.interactions)


def test_user_fields_are_named_alike_in_100k_and_1m():
    assert MovieLens100K.user_fields == MovieLens1M.user_fields == ("age", "gender", "occupation", "zip_code")


def test_ml1m_errors_name_file_line_and_column(tmp_path):
    root = write_ml1m(tmp_path / "rating", ratings=[*RATINGS_1M, (3, 2, 6, 978300760)])
    with pytest.raises(DataValidationError) as info:
        MovieLens1M(root).read()
    assert str(info.value) == (
        f"{root / 'ratings.dat'}:6: column 'Rating': expected a number between 1.0 and 5.0, got '6'"
    )
    root = write_ml1m(tmp_path / "occupation", users=[*USERS_1M[:2], (3, "M", "25", "21", "98107")])
    with pytest.raises(
        DataValidationError, match=r"users.dat:3: column 'Occupation': expected an occupation code 0-20"
    ):
        MovieLens1M(root).read()
    root = write_ml1m(tmp_path / "user", ratings=[*RATINGS_1M, (9, 1, 3, 978300760)])
    with pytest.raises(DataValidationError, match=r"ratings.dat:6: column 'UserID': unknown user: UserID 9 is not in"):
        MovieLens1M(root).read()
    root = write_ml1m(tmp_path / "short")
    (root / "ratings.dat").write_bytes(dat(RATINGS_1M) + b"3::2::4\n")
    with pytest.raises(DataValidationError, match=r"ratings.dat:6: malformed row: expected 4 fields .* got 3"):
        MovieLens1M(root).read()


def test_ml1m_read_as_utf8_names_the_undecodable_line(tmp_path):
    root = write_ml1m(tmp_path)
    with pytest.raises(DataValidationError, match=r"movies.dat:3: expected UTF-8 text"):
        MovieLens1M(root, encoding="utf-8").read()


# -- 10M --------------------------------------------------------------------------------------------------------
MOVIES_10M = [
    (1, "Toy Story (1995)", "Adventure|Animation"),
    (2, "Amélie (2001)", "Comedy|Romance"),
    (3, "X", "(no genres listed)"),
]
RATINGS_10M = [(1, 1, 5.0, 838985046), (1, 2, 4.5, 838983525), (2, 1, 0.5, 838983392), (3, 3, 3.0, 838983421)]
TAGS_10M = [
    (1, 1, "pixar", 1139045764),
    (1, 2, "Paris", 1139045765),
    (1, 1, "Pixar", 1139045766),
    (2, 1, "toys", 1139045767),
    (2, 1, "a::b", 1139045768),  # a tag that itself holds "::"
    (2, 2, "french", 1139045769),
]


def write_ml10m(root: Path, tags: list[tuple] = TAGS_10M, movies_encoding: str = "utf-8") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "movies.dat").write_bytes(dat(MOVIES_10M, movies_encoding))
    (root / "ratings.dat").write_bytes(dat(RATINGS_10M, "utf-8"))
    (root / "tags.dat").write_bytes(dat(tags, "utf-8"))
    return root


def test_ml10m_tags_as_item_and_user_fields(tmp_path):
    tables = MovieLens10M(write_ml10m(tmp_path), max_tags=2, max_user_tags=2).read()
    assert tables.interactions["rating"].tolist() == [5.0, 4.5, 0.5, 3.0]
    items = tables.items.set_index("item_id")
    assert items.loc[2, "title"] == "Amélie (2001)" and items.loc[3, "genres"] == ""
    assert items.loc[1, "tags"] == "pixar, a::b"  # pixar twice (case-insensitive), then a::b before toys
    assert items.loc[2, "tags"] == "french, paris"
    users = tables.users.set_index("user_id")["tags"].to_dict()
    assert users == {1: "pixar, paris", 2: "a::b, french", 3: ""}  # every user who rated, "" without own tags
    assert MovieLens10M(tmp_path).user_fields == () and MovieLens10M(tmp_path).read().users is None


def test_ml10m_encoding_is_utf8_and_configurable(tmp_path):
    root = write_ml10m(tmp_path, movies_encoding="latin-1")
    with pytest.raises(DataValidationError, match=r"movies.dat:2: expected UTF-8 text, got undecodable byte"):
        MovieLens10M(root).read()
    assert MovieLens10M(root, encoding="latin-1").read().items["title"][1] == "Amélie (2001)"


def test_ml10m_tag_of_unknown_movie_is_located(tmp_path):
    root = write_ml10m(tmp_path, tags=[*TAGS_10M, (1, 99, "lost", 1139045770)])
    with pytest.raises(DataValidationError, match=r"tags.dat:7: column 'MovieID': unknown item: MovieID 99 is not in"):
        MovieLens10M(root).read()


# -- CSV releases (20M / 25M / 32M) and the tag genome -------------------------------------------------------------
MOVIES_CSV = (
    "\ufeffmovieId,title,genres\r\n"  # a BOM and CRLF, as a spreadsheet export would write
    '1,"American President, The (1995)",Comedy|Drama|Romance\r\n'
    '2,"Misérables, Les (1995)",Drama|War\r\n'
    "3,Heat (1995),Action|Crime|Thriller\r\n"
)
RATINGS_CSV = "userId,movieId,rating,timestamp\r\n1,1,3.5,1112486027\r\n1,2,4.0,1112484676\r\n2,3,5.0,1112484819\r\n"
TAGS_CSV = 'userId,movieId,tag,timestamp\n1,1,"politics, romance",1240597180\n2,3,Al Pacino,1240597181\n'
GENOME_TAGS = "tagId,tag\n1,007\n2,action\n3,romance\n"
GENOME_SCORES = (
    "movieId,tagId,relevance\n1,1,0.02\n1,2,0.40\n1,3,0.90\n2,1,0.50\n2,2,0.50\n2,3,0.10\n3,1,0.7\n3,2,0.99\n3,3,0.0\n"
)


def write_csv_release(root: Path, genome: bool = True, scores: str = GENOME_SCORES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    files = {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_CSV, "tags.csv": TAGS_CSV}
    if genome:
        files |= {"genome-tags.csv": GENOME_TAGS, "genome-scores.csv": scores}
    for name, text in files.items():
        (root / name).write_bytes(text.encode("utf-8"))
    return root


def test_csv_release_reads_quoted_titles_bom_and_crlf(tmp_path):
    source = MovieLensCSV(write_csv_release(tmp_path), max_user_tags=3)
    tables = source.read()
    assert tables.items["title"].tolist() == ["American President, The (1995)", "Misérables, Les (1995)", "Heat (1995)"]
    assert tables.items["tags"].tolist() == ["politics, romance", "", "al pacino"]
    assert tables.users.to_dict("records") == [
        {"user_id": 1, "tags": "politics, romance"},
        {"user_id": 2, "tags": "al pacino"},
    ]
    assert "genome" not in source.item_fields and "genome-scores.csv" not in source.files()  # off by default


def test_genome_gives_the_top_n_tags_by_relevance(tmp_path):
    source = MovieLensCSV(write_csv_release(tmp_path), genome=2)
    assert source.item_fields == ("title", "genres", "tags", "genome")
    assert source.files()[-2:] == ["genome-scores.csv", "genome-tags.csv"]  # digests (and the cache key) cover them
    genome = source.read().items.set_index("item_id")["genome"].to_dict()
    # movie 2: relevance 0.5 for tags 1 and 2, a tie broken by tag id
    assert genome == {1: "romance, action", 2: "007, action", 3: "action, 007"}


def test_genome_errors(tmp_path):
    with pytest.raises(DataValidationError, match=r"genome-scores.csv: file not found"):
        MovieLensCSV(write_csv_release(tmp_path / "none", genome=False), genome=3).read()
    root = write_csv_release(tmp_path / "range", scores=GENOME_SCORES + "3,3,1.5\n")
    with pytest.raises(DataValidationError, match=r"genome-scores.csv:11: column 'relevance': expected a number betw"):
        MovieLensCSV(root, genome=3).read()
    root = write_csv_release(tmp_path / "tag", scores=GENOME_SCORES.replace("3,3,0.0", "3,4,0.0"))
    with pytest.raises(DataValidationError, match=r"genome-scores.csv:10: column 'tagId': unknown tag: tagId 4"):
        MovieLensCSV(root, genome=3).read()
    with pytest.raises(ConfigError, match=r"uses field \{genome\}"):  # a template may not name a field that is off
        validate_template(["{title}", "{genome}"], MovieLensCSV(root).item_fields, "MovieLensCSV")
    with pytest.raises(ConfigError, match="max_user_tags=2 needs tags.csv"):
        MovieLensCSV(root, tags=False, max_user_tags=2)


def test_csv_rating_error_names_file_line_and_column(tmp_path):
    root = write_csv_release(tmp_path, genome=False)
    (root / "ratings.csv").write_bytes((RATINGS_CSV + "2,1,abc,1112484819\r\n").encode())
    with pytest.raises(DataValidationError) as info:
        MovieLensCSV(root).read()
    assert (
        str(info.value)
        == f"{root / 'ratings.csv'}:5: column 'rating': expected a number between 0.5 and 5.0, got 'abc'"
    )


# -- the yaml of each release ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "folder", "writer", "cls"),
    [
        ("movielens_1m", "ml-1m", write_ml1m, MovieLens1M),
        ("movielens_10m", "ml-10m", write_ml10m, MovieLens10M),
        ("movielens_20m", "ml-20m", write_csv_release, MovieLensCSV),
        ("movielens_25m", "ml-25m", write_csv_release, MovieLensCSV),
        ("movielens_32m", "ml-32m", write_csv_release, MovieLensCSV),
        ("movielens_small", "ml-latest-small", write_csv_release, MovieLensLatest),
    ],
)
def test_each_yaml_prepares_its_release(config, folder, writer, cls, tmp_path):
    root = writer(tmp_path / folder)
    cfg = compose_train(
        [f"data={config}", f"paths.data_dir={tmp_path}", "data.split.ratios=[1,1,1]"], tmp_path, tmp_path
    )
    data = prepared_data(cfg)
    assert type(data.source) is cls and data.source.root == root
    assert data.num_items == len(data.source.read().items)
    assert list(data.prepare().users.columns) == ["user_id", *data.source.user_fields]
    expected = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in data.source.files()}
    assert data.prepare().input_sha256 == expected
