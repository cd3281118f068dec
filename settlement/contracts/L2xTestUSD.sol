// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title L2xTestUSD: l2x's own ERC-20, with 6 decimals like USDC, for tests and the demo.
/// @notice TEST AND DEMO ONLY: anyone may mint any amount. This is never the production
///         collateral; production names a real token's address in its configuration.
/// @dev Standard ERC-20 semantics, with these choices:
///      - an allowance of `type(uint256).max` is infinite: `transferFrom` does not decrease it
///        (and emits no `Approval` when it decreases any other allowance);
///      - refusals revert with the ERC-6093 errors below, never return `false`;
///      - no transfer or mint to `address(0)` (a test that forgot an address fails loudly).
contract L2xTestUSD {
    /// The token's name.
    string public constant name = "l2x Test USD";
    /// The token's symbol.
    string public constant symbol = "tUSD";
    /// One token is 10^6 base units: one base unit is one micro-dollar, as with USDC.
    uint8 public constant decimals = 6;

    /// All tokens minted.
    uint256 public totalSupply;
    /// Each holder's tokens.
    mapping(address => uint256) public balanceOf;
    /// What `spender` may still move from `owner`'s balance: `allowance[owner][spender]`.
    mapping(address => mapping(address => uint256)) public allowance;

    /// `value` tokens moved from `from` to `to` (`from` = 0: minted).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// `owner` set `spender`'s allowance to `value`.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// `sender` holds `balance`, less than the `needed` it tried to move.
    error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
    /// `spender` may move `allowance`, less than the `needed` it tried to move.
    error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    /// Tokens cannot go to `receiver` (the zero address).
    error ERC20InvalidReceiver(address receiver);

    /// @notice Creates `amount` new tokens for `to`. TEST AND DEMO ONLY: open to anyone.
    function mint(address to, uint256 amount) external {
        if (to == address(0)) revert ERC20InvalidReceiver(to);
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Moves `amount` of the caller's tokens to `to`.
    /// @return true (a refusal reverts).
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    /// @notice Lets `spender` move up to `amount` of the caller's tokens; replaces any
    ///         earlier allowance. `type(uint256).max` never decreases.
    /// @return true.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` of `from`'s tokens to `to` on the caller's allowance, which
    ///         decreases by `amount` unless it is infinite.
    /// @return true (a refusal reverts).
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert ERC20InsufficientAllowance(msg.sender, allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    /// @dev Moves `amount` from `from` to `to` (the same address: no change) and emits `Transfer`.
    function _move(address from, address to, uint256 amount) private {
        if (to == address(0)) revert ERC20InvalidReceiver(to);
        uint256 balance = balanceOf[from];
        if (balance < amount) revert ERC20InsufficientBalance(from, balance, amount);
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
