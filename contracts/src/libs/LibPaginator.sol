// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

/// @notice `(offset, limit)` pages over enumerable sets: elements [offset, min(offset+limit, len)) plus the
///         full length. Never reverts: offset >= len or limit 0 give an empty page with the length.
library LibPaginator {
    using EnumerableSet for EnumerableSet.Bytes32Set;
    using EnumerableSet for EnumerableSet.AddressSet;

    function page(
        EnumerableSet.Bytes32Set storage set_,
        uint256 offset_,
        uint256 limit_
    ) internal view returns (bytes32[] memory items_, uint256 total_) {
        total_ = set_.length();
        items_ = new bytes32[](_size(total_, offset_, limit_));
        for (uint256 i = 0; i < items_.length; i++) {
            items_[i] = set_.at(offset_ + i);
        }
    }

    function page(
        EnumerableSet.AddressSet storage set_,
        uint256 offset_,
        uint256 limit_
    ) internal view returns (address[] memory items_, uint256 total_) {
        total_ = set_.length();
        items_ = new address[](_size(total_, offset_, limit_));
        for (uint256 i = 0; i < items_.length; i++) {
            items_[i] = set_.at(offset_ + i);
        }
    }

    function _size(uint256 total_, uint256 offset_, uint256 limit_) private pure returns (uint256) {
        if (offset_ >= total_) return 0;
        uint256 left_ = total_ - offset_;
        return limit_ < left_ ? limit_ : left_;
    }
}
