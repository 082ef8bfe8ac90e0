"""Known gaps (knowledge/gaps.yaml): a question about a subject no entry answers is told so, with the hotline."""

from knowledge.gaps import find_gap, load_gaps
from knowledge.schema import load_knowledge


def test_no_entry_answers_a_known_gap():
    """When an entry is written for a gap, its own texts match the gap: delete the gap then."""
    kb = load_knowledge()
    matched = [(e.id, gap.id) for e in kb.entries.values() for text in e.texts()
               if (gap := find_gap(text)) is not None]
    assert matched == []
    assert len(load_gaps()) >= 2


def test_gap_phrases_match_whole_words_with_or_without_accents():
    assert find_gap("BHYT có trả tiền làm răng không").id == "bhyt-chi-tra-dich-vu-cu-the"
    assert find_gap("the bhyt co tiem vac xin mien phi ko").id == "bhyt-chi-tra-dich-vu-cu-the"
    assert find_gap("đi khám ở nước ngoài có được BHYT thanh toán không").id == "bhyt-kham-chua-benh-o-nuoc-ngoai"
    assert find_gap("BHYT hộ gia đình mua ở đâu") is None
    assert find_gap("đóng bảo hiểm ở nước ngoài rồi về nước rút được không") is None  # an entry covers this


def test_the_engine_says_it_has_no_information_and_gives_the_hotline(lexical_engine):
    reply = lexical_engine.ask("bảo hiểm y tế có chi trả tiền làm răng sứ không ạ")
    assert reply.kind == "not_sure" and reply.entry_id is None and reply.topic == "health_insurance"
    assert "chưa có thông tin về" in reply.text and "1900 9068" in reply.text
    neighbour = lexical_engine.ask("đi khám bệnh không mang thẻ BHYT giấy thì dùng VssID được không")
    assert neighbour.kind != "not_sure"  # BHYT questions the entries answer are untouched
