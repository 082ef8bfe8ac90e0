"""The fixed list of topics: the one place that names them.

Keys are stable (they are stored in the question log); labels are what
citizens and staff see.
"""

from __future__ import annotations

TOPICS: dict[str, str] = {
    "voluntary": "BHXH tự nguyện và hỗ trợ của Nhà nước",
    "pension": "Lương hưu",
    "lump_sum": "BHXH một lần và bảo lưu thời gian đóng",
    "penalties": "Chậm đóng, trốn đóng, xử phạt và tố giác",
    "new_law": "Đối tượng mới và điểm mới của Luật BHXH 2024",
    "social_pension": "Trợ cấp hưu trí xã hội, trợ cấp hằng tháng, hệ thống đa tầng",
    "contribution_rates": "Mức đóng BHXH bắt buộc",
    "maternity": "Chế độ thai sản",
    "sickness": "Chế độ ốm đau",
    "unemployment": "Bảo hiểm thất nghiệp",
    "survivors": "Chế độ tử tuất và mai táng",
    "occupational": "Tai nạn lao động, bệnh nghề nghiệp",
    "health_insurance": "Bảo hiểm y tế",
    "procedures": "Thủ tục, VssID, sổ BHXH, tổng đài",
    "scams": "Lừa đảo và tin đồn sai",
}

# Shown in the "not sure" menu, in this order (the topics people ask most).
MENU_ORDER: list[str] = [
    "voluntary", "pension", "lump_sum", "maternity", "health_insurance",
    "unemployment", "occupational", "penalties", "new_law", "procedures",
]


def label(topic: str) -> str:
    return TOPICS[topic]
